/*
 * fuzz_shard.c — libFuzzer target for the shard validator and everything the
 * loader does with a shard that passes it.
 *
 * Input: arbitrary bytes taken as a whole shard file. shard_validate must
 * never crash on them. When it accepts them, the documents are found, packed
 * into rows of T = 1 + (size % 37) tokens in both modes, and every row is
 * written as a one-row batch; each batch must pass packed_batch_check and
 * its padding must carry target -1. Any violated invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include "dataloader.h"

static void check_rows(const Shard *s, const PackedRows *rows, int T)
{
    PackedBatch b;
    packed_batch_alloc(&b, 1, T);
    int64_t tokens = 0;
    for (int r = 0; r < rows->num_rows; r++) {
        b.num_segments = 0;
        packed_row_write(&b, 0, s, rows, r, SHARD_EOT);
        packed_batch_finish(&b);
        if (packed_batch_check(&b)) abort();
        for (int i = 0; i < T; i++) {
            if (b.targets[i] == -1) continue;
            if (b.targets[i] < 0 || b.targets[i] > SHARD_EOT) abort(); /* fuzz vocabulary is 50257 */
            tokens++;
        }
    }
    if (tokens != s->num_tokens || rows->stats.tokens != s->num_tokens) abort();
    packed_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (shard_validate(data, size, SHARD_EOT + 1, SHARD_EOT)) return 0;
    Shard s = shard_from_bytes(data, size);
    int T = 1 + (int)(size % 37), num_docs;
    int64_t *starts = shard_find_documents(&s, SHARD_EOT, &num_docs);
    if (num_docs < 1 || starts[0] != 0) abort();
    PackedRows rows;
    pack_chunk(&rows, starts, num_docs, T);
    check_rows(&s, &rows, T);
    packed_rows_free(&rows);
    pack_bestfit(&rows, starts, num_docs, T, 1 + (int)(size % 5));
    check_rows(&s, &rows, T);
    packed_rows_free(&rows);
    free(starts);
    return 0;
}
