/*
 * dataloader.h — packed micro-batches from a glob of token shards: epochs,
 * shuffling, ranks and a resumable position.
 *
 * The loader walks one stream of rows (T tokens each, packed by packing.h):
 *   for epoch e = 0, 1, ...: for each shard in this epoch's shard order:
 *     pack the shard's documents into rows; visit them in this epoch's row order
 * The orders are shuffles drawn from (seed, epoch[, shard]); seed 0
 * (DATALOADER_NO_SHUFFLE) keeps file order and stream order (validation).
 * Each dataloader_next() consumes the next global batch of B * num_ranks
 * rows; rank r keeps rows r, r + P, ... of it as its B rows. The stream does
 * not depend on B or P, so a global batch may straddle shards and epochs.
 *
 * Batch contents (batch.h), per row: each piece is one segment whose inputs
 * are its stream tokens and whose targets are the next stream tokens (a
 * document's last token predicts the document token that starts the next
 * document; the last token of a shard predicts the document token too); the
 * rest of the row is one padding segment, inputs the document token, targets -1.
 * The document token is GPT-2's end-of-text 50256 unless the caller names
 * another (shard.h).
 *
 * Validation: at init every shard's header is checked against its file size;
 * the token scan (first token the document token, ids < vocab_size) runs when
 * a shard is first loaded. Problems end the program with a message naming the
 * file.
 *
 * DataLoaderState is a plain fixed-size struct (stored verbatim in
 * checkpoints): where the next global batch starts, plus the settings that
 * must match on restore.
 */
#ifndef PACKLM_DATALOADER_H
#define PACKLM_DATALOADER_H

#include <stdint.h>
#include <stdio.h>
#include "batch.h"
#include "packing.h"
#include "rand.h"
#include "shard.h"
#include "utils.h"

#define DATALOADER_NO_SHUFFLE 0
#define DATALOADER_BESTFIT_WINDOW 4096 /* documents per best-fit window */
#define DATALOADER_STATE_VERSION 1

typedef struct {
    int64_t version;    /* DATALOADER_STATE_VERSION */
    int64_t seed, T, mode, num_shards, num_tokens; /* must match on restore */
    int64_t epoch;      /* epochs finished */
    int64_t shard_pos;  /* index into this epoch's shard order */
    int64_t row_pos;    /* rows of that shard already consumed */
} DataLoaderState;

typedef struct {
    /* settings */
    int B, T, rank, num_ranks, vocab_size;
    int doc_token; /* the token that starts every document */
    PackingMode mode;
    uint64_t seed;
    char **paths;
    int num_shards;
    int64_t num_tokens; /* over all shards, from the headers */
    /* position in the row stream */
    int64_t epoch;
    int shard_pos;
    int64_t row_pos;
    int *shard_order; /* this epoch's order (num_shards) */
    /* the shard being read */
    int loaded;       /* index of the shard in shard/rows/row_order, -1 none */
    Shard shard;
    PackedRows rows;
    int *row_order;   /* (rows.num_rows) */
    /* packing statistics over the shards loaded so far (each counted once) */
    PackingStats stats;
    int shards_counted;
    unsigned char *counted; /* (num_shards) */
} DataLoader;

/* An independent stream per (seed, epoch, salt). */
static inline Rng dataloader_rng(uint64_t seed, int64_t epoch, uint64_t salt)
{
    Rng r = rng_create(seed);
    Rng e = rng_create(rng_u64(&r) ^ (uint64_t)epoch);
    return rng_create(rng_u64(&e) ^ salt);
}

/* Identity order, shuffled unless the seed says not to. */
static inline void dataloader_order(int *order, int n, uint64_t seed, int64_t epoch, uint64_t salt)
{
    for (int i = 0; i < n; i++) order[i] = i;
    if (seed == DATALOADER_NO_SHUFFLE) return;
    Rng r = dataloader_rng(seed, epoch, salt);
    rng_shuffle_ints(&r, order, n);
}

/* Release the loaded shard (its mapping, rows and row order), if any. */
static inline void dataloader_unload_shard(DataLoader *dl)
{
    if (dl->loaded < 0) return;
    shard_close(&dl->shard);
    packed_rows_free(&dl->rows);
    free(dl->row_order);
    dl->loaded = -1;
}

/* Make shard `index` the loaded one: map, scan, pack, order its rows. */
static inline void dataloader_load_shard(DataLoader *dl, int index)
{
    if (dl->loaded == index) {
        dataloader_order(dl->row_order, dl->rows.num_rows, dl->seed, dl->epoch, (uint64_t)index + 1);
        return;
    }
    dataloader_unload_shard(dl);
    shard_open(&dl->shard, dl->paths[index]);
    shard_check_tokens(&dl->shard, dl->vocab_size, dl->doc_token);
    int num_docs;
    int64_t *starts = shard_find_documents(&dl->shard, dl->doc_token, &num_docs);
    pack_documents(&dl->rows, dl->mode, starts, num_docs, dl->T, DATALOADER_BESTFIT_WINDOW);
    free(starts);
    dl->row_order = (int *)malloc_or_die((size_t)dl->rows.num_rows * sizeof(int));
    dataloader_order(dl->row_order, dl->rows.num_rows, dl->seed, dl->epoch, (uint64_t)index + 1);
    dl->loaded = index;
    if (!dl->counted[index]) {
        dl->counted[index] = 1;
        dl->shards_counted++;
        packing_stats_add(&dl->stats, &dl->rows.stats);
    }
}

/* Go to (epoch, shard_pos, row_pos) of the stream. */
static inline void dataloader_seek(DataLoader *dl, int64_t epoch, int shard_pos, int64_t row_pos)
{
    dl->epoch = epoch;
    dl->shard_pos = shard_pos;
    dl->row_pos = row_pos;
    dataloader_order(dl->shard_order, dl->num_shards, dl->seed, epoch, 0);
    dataloader_load_shard(dl, dl->shard_order[shard_pos]);
}

static inline void dataloader_init(DataLoader *dl, const char *pattern, int B, int T, int rank, int num_ranks,
                                   PackingMode mode, uint64_t seed, int vocab_size, int doc_token)
{
    if (B < 1 || T < 1) die("dataloader: B (%d) and T (%d) must be positive", B, T);
    if (num_ranks < 1 || rank < 0 || rank >= num_ranks)
        die("dataloader: rank %d is not in [0, %d)", rank, num_ranks);
    if (doc_token < 0 || doc_token >= vocab_size)
        die("dataloader: vocabulary size %d does not contain the %s token %d", vocab_size,
            doc_token == SHARD_EOT ? "end-of-text" : "document", doc_token);
    memset(dl, 0, sizeof(*dl));
    dl->doc_token = doc_token;
    dl->B = B;
    dl->T = T;
    dl->rank = rank;
    dl->num_ranks = num_ranks;
    dl->vocab_size = vocab_size;
    dl->mode = mode;
    dl->seed = seed;
    dl->paths = shard_glob(pattern, &dl->num_shards);
    for (int i = 0; i < dl->num_shards; i++) {
        Shard s;
        shard_open(&s, dl->paths[i]);
        dl->num_tokens += s.num_tokens;
        shard_close(&s);
    }
    dl->shard_order = (int *)malloc_or_die((size_t)dl->num_shards * sizeof(int));
    dl->counted = (unsigned char *)calloc_or_die((size_t)dl->num_shards, 1);
    dl->loaded = -1;
    dataloader_seek(dl, 0, 0, 0);
}

/* Back to the start of epoch 0 (e.g. before each validation pass). */
static inline void dataloader_reset(DataLoader *dl)
{
    dataloader_seek(dl, 0, 0, 0);
}

/* Write stream row `row` of the loaded shard as row `slot` of the batch,
   appending its segments to b->cu_seqlens[0 .. b->num_segments]. */
static inline void packed_row_write(PackedBatch *b, int slot, const Shard *s, const PackedRows *rows, int row,
                                    int doc_token)
{
    int T = b->T, base = slot * T, filled = 0;
    int *inp = b->inputs + base, *tgt = b->targets + base;
    for (int p = rows->row_begin[row]; p < rows->row_begin[row + 1]; p++) {
        Piece pc = rows->pieces[p];
        b->cu_seqlens[b->num_segments++] = base + filled;
        for (int k = 0; k < pc.len; k++, filled++) {
            int64_t j = pc.start + k;
            inp[filled] = (int)shard_token(s, j);
            tgt[filled] = j + 1 < s->num_tokens ? (int)shard_token(s, j + 1) : doc_token;
        }
    }
    if (filled < T) b->cu_seqlens[b->num_segments++] = base + filled;
    for (; filled < T; filled++) {
        inp[filled] = doc_token;
        tgt[filled] = -1;
    }
}

/* Close the segment list and derive pos / max_seqlen. */
static inline void packed_batch_finish(PackedBatch *b)
{
    b->cu_seqlens[b->num_segments] = b->B * b->T;
    packed_batch_derive_positions(b);
}

/* Fill `batch` (from packed_batch_alloc(B, T)) with this rank's next rows. */
static inline void dataloader_next(DataLoader *dl, PackedBatch *batch)
{
    if (batch->B != dl->B || batch->T != dl->T)
        die("dataloader_next: batch is %dx%d but the loader makes %dx%d", batch->B, batch->T, dl->B, dl->T);
    batch->num_segments = 0;
    int global_rows = dl->B * dl->num_ranks;
    for (int i = 0; i < global_rows; i++) {
        while (dl->row_pos >= dl->rows.num_rows) {
            if (dl->shard_pos + 1 < dl->num_shards) dataloader_seek(dl, dl->epoch, dl->shard_pos + 1, 0);
            else dataloader_seek(dl, dl->epoch + 1, 0, 0);
        }
        if (i % dl->num_ranks == dl->rank)
            packed_row_write(batch, i / dl->num_ranks, &dl->shard, &dl->rows, dl->row_order[dl->row_pos], dl->doc_token);
        dl->row_pos++;
    }
    packed_batch_finish(batch);
}

static inline DataLoaderState dataloader_get_state(const DataLoader *dl)
{
    DataLoaderState st;
    memset(&st, 0, sizeof(st));
    st.version = DATALOADER_STATE_VERSION;
    st.seed = (int64_t)dl->seed;
    st.T = dl->T;
    st.mode = dl->mode;
    st.num_shards = dl->num_shards;
    st.num_tokens = dl->num_tokens;
    st.epoch = dl->epoch;
    st.shard_pos = dl->shard_pos;
    st.row_pos = dl->row_pos;
    return st;
}

/* Resume at a saved position; dies if the state belongs to other data or
   settings. B and the number of ranks may differ from the saving run. */
static inline void dataloader_set_state(DataLoader *dl, const DataLoaderState *st)
{
    if (st->version != DATALOADER_STATE_VERSION)
        die("dataloader state: version %lld, expected %d", (long long)st->version, DATALOADER_STATE_VERSION);
    if (st->seed != (int64_t)dl->seed || st->T != dl->T || st->mode != dl->mode)
        die("dataloader state: saved with seed %lld, T %lld, packing %s; this run has seed %lld, T %d, packing %s",
            (long long)st->seed, (long long)st->T, packing_mode_name((PackingMode)st->mode), (long long)dl->seed,
            dl->T, packing_mode_name(dl->mode));
    if (st->num_shards != dl->num_shards || st->num_tokens != dl->num_tokens)
        die("dataloader state: saved over %lld shards / %lld tokens, but the data now has %d shards / %lld tokens",
            (long long)st->num_shards, (long long)st->num_tokens, dl->num_shards, (long long)dl->num_tokens);
    if (st->epoch < 0 || st->shard_pos < 0 || st->shard_pos >= dl->num_shards || st->row_pos < 0)
        die("dataloader state: position (epoch %lld, shard %lld, row %lld) is out of range", (long long)st->epoch,
            (long long)st->shard_pos, (long long)st->row_pos);
    dataloader_seek(dl, st->epoch, (int)st->shard_pos, st->row_pos);
    if (st->row_pos > dl->rows.num_rows)
        die("dataloader state: row %lld is past the %d rows of shard '%s'", (long long)st->row_pos,
            dl->rows.num_rows, dl->shard.path);
}

static inline void dataloader_print_stats(const DataLoader *dl, FILE *f)
{
    fprintf(f, "dataloader: %d shard%s, %lld tokens, packing %s, B %d x T %d per rank, rank %d of %d, %s\n",
            dl->num_shards, dl->num_shards == 1 ? "" : "s", (long long)dl->num_tokens, packing_mode_name(dl->mode),
            dl->B, dl->T, dl->rank, dl->num_ranks,
            dl->seed == DATALOADER_NO_SHUFFLE ? "no shuffle" : "shuffled per epoch");
    fprintf(f, "dataloader: packing statistics over %d of %d shards loaded so far:\n", dl->shards_counted,
            dl->num_shards);
    packing_stats_print(&dl->stats, f);
}

static inline void dataloader_free(DataLoader *dl)
{
    dataloader_unload_shard(dl);
    shard_free_paths(dl->paths, dl->num_shards);
    free(dl->shard_order);
    free(dl->counted);
    memset(dl, 0, sizeof(*dl));
}

#endif /* PACKLM_DATALOADER_H */
