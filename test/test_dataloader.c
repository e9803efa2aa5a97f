/*
 * test_dataloader.c — packing invariants, epochs, shuffling, ranks and resume
 * of the document-packing dataloader, plus the in-memory shard validator.
 *
 * Packing is checked on random document-length streams (lengths 1 .. 5T with
 * extra weight on 1, T-1, T, T+1, 2T). The loader is checked on shards
 * written to a temporary directory whose tokens identify their stream
 * position: a document is end-of-text followed by ids ID_BASE + g, where g is
 * the token's index in the concatenation of all shards (in file order). So
 * every batch entry can be traced back to the exact token it came from.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dataloader.h"
#include "shard_file.h"
#include "test.h"

#define ID_BASE 60000
#define LLAMA3_BOS 128000 /* Llama 3's begin-of-text, the document token of llm.c's Llama 3 shards */
#define VOCAB (1 << 24)
#define POISON (-7)

/* ------------------------------------------------------------ streams */

static int random_doc_length(Rng *r, int T)
{
    if (rng_below(r, 8) == 0) {
        const int special[5] = {1, T - 1, T, T + 1, 2 * T};
        int len = special[rng_below(r, 5)];
        return len < 1 ? 1 : len;
    }
    return 1 + (int)rng_below(r, rng_below(r, 4) == 0 ? 5 * (uint64_t)T : (uint64_t)T);
}

/* doc_start for num_docs random documents (num_docs + 1 entries). */
static int64_t *random_doc_starts(Rng *r, int num_docs, int T)
{
    int64_t *starts = (int64_t *)malloc_or_die(((size_t)num_docs + 1) * sizeof(int64_t));
    starts[0] = 0;
    for (int d = 0; d < num_docs; d++) starts[d + 1] = starts[d] + random_doc_length(r, T);
    return starts;
}

/* ------------------------------------------------------------ packing */

/* Index of the document holding stream token t (binary search). */
static int doc_containing(const int64_t *starts, int num_docs, int64_t t)
{
    int lo = 0, hi = num_docs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Checks common to both modes; returns NULL or what is wrong. */
static const char *check_rows_common(const PackedRows *p, const int64_t *starts, int num_docs, int T)
{
    int64_t n = starts[num_docs];
    int *cover = (int *)calloc_or_die((size_t)n, sizeof(int));
    int *pieces_of_doc = (int *)calloc_or_die((size_t)num_docs, sizeof(int));
    const char *err = NULL;
    if (p->row_begin[0] != 0 || p->row_begin[p->num_rows] != p->num_pieces) err = "row_begin does not span the pieces";
    for (int r = 0; r < p->num_rows && !err; r++) {
        int fill = 0;
        if (p->row_begin[r + 1] <= p->row_begin[r]) err = "a row has no piece";
        for (int i = p->row_begin[r]; i < p->row_begin[r + 1] && !err; i++) {
            Piece pc = p->pieces[i];
            if (pc.len < 1 || pc.len > T || pc.start < 0 || pc.start + pc.len > n) { err = "piece out of range"; break; }
            int d = doc_containing(starts, num_docs, pc.start);
            if (pc.start + pc.len > starts[d + 1]) { err = "a piece crosses a document boundary"; break; }
            pieces_of_doc[d]++;
            for (int k = 0; k < pc.len; k++) cover[pc.start + k]++;
            fill += pc.len;
        }
        if (!err && fill > T) err = "a row holds more than T tokens";
    }
    for (int64_t t = 0; t < n && !err; t++)
        if (cover[t] != 1) err = "a token is not covered exactly once";
    int64_t split = 0;
    for (int i = 0; i < num_docs; i++) split += pieces_of_doc[i] > 1;
    if (!err && split != p->stats.docs_split) err = "docs_split statistic is wrong";
    if (!err && p->stats.padding != (int64_t)p->num_rows * T - n) err = "padding statistic is wrong";
    if (!err && (p->stats.pieces != p->num_pieces || p->stats.docs != num_docs || p->stats.rows != p->num_rows))
        err = "piece/document/row statistics are wrong";
    free(cover);
    free(pieces_of_doc);
    return err;
}

static const char *check_chunk_rows(const PackedRows *p, const int64_t *starts, int num_docs, int T)
{
    int64_t n = starts[num_docs];
    if (p->num_rows != (n + T - 1) / T) return "chunk: wrong number of rows";
    for (int r = 0; r < p->num_rows; r++) {
        int64_t expect = (int64_t)r * T; /* stream order, no gaps */
        for (int i = p->row_begin[r]; i < p->row_begin[r + 1]; i++) {
            if (p->pieces[i].start != expect) return "chunk: row is not the next T stream tokens";
            expect += p->pieces[i].len;
        }
        if (expect != ((int64_t)r * T + T < n ? (int64_t)r * T + T : n)) return "chunk: a row is short before the end";
    }
    return NULL;
}

static const char *check_bestfit_rows(const PackedRows *p, const int64_t *starts, int num_docs, int T,
                                      int one_window)
{
    for (int r = 0; r < p->num_rows; r++)
        for (int i = p->row_begin[r]; i < p->row_begin[r + 1]; i++) {
            Piece pc = p->pieces[i];
            int d = doc_containing(starts, num_docs, pc.start);
            int64_t len = starts[d + 1] - starts[d], off = pc.start - starts[d];
            if (len <= T && (off != 0 || pc.len != len)) return "bestfit split a document that fits in a row";
            if (off % T != 0) return "bestfit piece does not start at a multiple of T into its document";
            if (pc.len != (len - off < T ? len - off : T)) return "bestfit piece is not max(T, rest) long";
        }
    if (one_window) {
        /* any-fit property: no two rows could have been merged */
        int first = T + 1, second = T + 1;
        for (int r = 0; r < p->num_rows; r++) {
            int fill = 0;
            for (int i = p->row_begin[r]; i < p->row_begin[r + 1]; i++) fill += p->pieces[i].len;
            if (fill < first) { second = first; first = fill; }
            else if (fill < second) second = fill;
        }
        if (p->num_rows >= 2 && first + second <= T) return "bestfit left two rows that fit together";
    }
    return NULL;
}

static int same_rows(const PackedRows *a, const PackedRows *b)
{
    if (a->num_rows != b->num_rows || a->num_pieces != b->num_pieces ||
        memcmp(a->row_begin, b->row_begin, ((size_t)a->num_rows + 1) * sizeof(int)))
        return 0;
    for (int i = 0; i < a->num_pieces; i++)
        if (a->pieces[i].start != b->pieces[i].start || a->pieces[i].len != b->pieces[i].len) return 0;
    return 1;
}

static void test_packing_random_streams(void)
{
    const int Ts[4] = {1, 7, 64, 200};
    const int windows[3] = {3, 50, 1 << 30};
    Rng r = rng_create(11);
    const char *chunk_err = NULL, *bestfit_err = NULL;
    int streams = 0, deterministic = 1;
    for (int ti = 0; ti < 4; ti++)
        for (int s = 0; s < 12; s++, streams++) {
            int T = Ts[ti], num_docs = 1 + (int)rng_below(&r, 300);
            int64_t *starts = random_doc_starts(&r, num_docs, T);
            PackedRows p, q;
            pack_chunk(&p, starts, num_docs, T);
            if (!chunk_err) chunk_err = check_rows_common(&p, starts, num_docs, T);
            if (!chunk_err) chunk_err = check_chunk_rows(&p, starts, num_docs, T);
            packed_rows_free(&p);
            for (int wi = 0; wi < 3; wi++) {
                pack_bestfit(&p, starts, num_docs, T, windows[wi]);
                pack_bestfit(&q, starts, num_docs, T, windows[wi]);
                deterministic &= same_rows(&p, &q);
                if (!bestfit_err) bestfit_err = check_rows_common(&p, starts, num_docs, T);
                if (!bestfit_err)
                    bestfit_err = check_bestfit_rows(&p, starts, num_docs, T, windows[wi] >= num_docs);
                packed_rows_free(&p);
                packed_rows_free(&q);
            }
            free(starts);
        }
    check(!chunk_err, "pack_chunk_invariants", "%s", chunk_err);
    check(!bestfit_err, "pack_bestfit_invariants", "%s", bestfit_err);
    check(deterministic, "pack_bestfit_deterministic", "two packings of the same stream differ");
    check(streams == 48, "pack_streams_tested", "%d streams", streams);
}

/* With documents much shorter than T, best-fit leaves under 1% padding
   and splits nothing. */
static void test_bestfit_padding_is_small(void)
{
    Rng r = rng_create(5);
    int T = 1024, num_docs = 3000;
    int64_t *starts = (int64_t *)malloc_or_die(((size_t)num_docs + 1) * sizeof(int64_t));
    starts[0] = 0;
    for (int d = 0; d < num_docs; d++) starts[d + 1] = starts[d] + 1 + (int)rng_below(&r, 600);
    PackedRows p;
    pack_bestfit(&p, starts, num_docs, T, 4096);
    double pad = (double)p.stats.padding / ((double)p.num_rows * T);
    check(pad < 0.01, "bestfit_padding_small", "padding %.3f%% >= 1%%", 100 * pad);
    check(p.stats.docs_split == 0, "bestfit_no_split_short_docs", "%lld documents split",
          (long long)p.stats.docs_split);
    packed_rows_free(&p);
    free(starts);
}

/* ------------------------------------------------------------ shards on disk */

typedef struct {
    char dir[64];
    char pattern[96];
    int num_shards;
    int64_t n;         /* tokens over all shards */
    int num_docs, docs_per_shard;
    int64_t *doc_of;   /* (n) document index of stream token g */
    int64_t *doc_start;/* (num_docs + 1) */
} TestData;

/* num_shards uint32 shards of docs_per_shard random documents each. */
static void make_test_data(TestData *td, uint64_t seed, int num_shards, int docs_per_shard, int T)
{
    Rng r = rng_create(seed);
    memset(td, 0, sizeof(*td));
    strcpy(td->dir, "/tmp/packlm_dataloader_XXXXXX");
    if (!mkdtemp(td->dir)) die("mkdtemp failed");
    snprintf(td->pattern, sizeof(td->pattern), "%s/shard_*.bin", td->dir);
    td->num_shards = num_shards;
    td->docs_per_shard = docs_per_shard;
    td->num_docs = num_shards * docs_per_shard;
    int64_t *starts = random_doc_starts(&r, td->num_docs, T);
    td->doc_start = starts;
    td->n = starts[td->num_docs];
    td->doc_of = (int64_t *)malloc_or_die((size_t)td->n * sizeof(int64_t));
    uint32_t *tokens = (uint32_t *)malloc_or_die((size_t)td->n * sizeof(uint32_t));
    for (int d = 0; d < td->num_docs; d++)
        for (int64_t g = starts[d]; g < starts[d + 1]; g++) {
            td->doc_of[g] = d;
            tokens[g] = g == starts[d] ? SHARD_EOT : (uint32_t)(ID_BASE + g);
        }
    for (int s = 0; s < num_shards; s++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/shard_%03d.bin", td->dir, s);
        int64_t a = starts[s * docs_per_shard], b = starts[(s + 1) * docs_per_shard];
        write_shard_file(path, tokens + a, b - a, 4);
    }
    free(tokens);
}

static void free_test_data(TestData *td)
{
    for (int s = 0; s < td->num_shards; s++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/shard_%03d.bin", td->dir, s);
        unlink(path);
    }
    rmdir(td->dir);
    free(td->doc_of);
    free(td->doc_start);
}

/* Stream index of a non-padding batch token, -1 if it cannot be known (an
   end-of-text that ends its segment). */
static int64_t stream_index(const PackedBatch *b, int i, int seg_end)
{
    if (b->inputs[i] != SHARD_EOT) return b->inputs[i] - ID_BASE;
    if (i + 1 < seg_end && b->inputs[i + 1] != SHARD_EOT) return b->inputs[i + 1] - ID_BASE - 1;
    return -1;
}

static void poison_batch(PackedBatch *b)
{
    int n = b->B * b->T;
    for (int i = 0; i < n; i++) b->inputs[i] = b->targets[i] = b->pos[i] = POISON;
    for (int i = 0; i <= n; i++) b->cu_seqlens[i] = POISON;
    b->num_segments = b->max_seqlen = POISON;
}

/* Everything one batch must satisfy; counts stream tokens into seen[]. */
static const char *check_loader_batch(const PackedBatch *b, const TestData *td, PackingMode mode, int *seen,
                                      int64_t *eot_seen, int64_t *padding)
{
    const char *err = packed_batch_check(b);
    if (err) return err;
    int T = b->T;
    for (int s = 0; s < b->num_segments; s++) {
        int start = b->cu_seqlens[s], end = b->cu_seqlens[s + 1], len = end - start;
        if (b->targets[start] == -1) { /* padding: rest of the row, inputs end-of-text */
            if (end % T != 0) return "padding does not run to the row end";
            for (int i = start; i < end; i++)
                if (b->targets[i] != -1 || b->inputs[i] != SHARD_EOT) return "padding token with a target";
            *padding += len;
            continue;
        }
        int64_t first = -1;
        for (int i = start; i < end; i++) {
            if (b->inputs[i] < 0 || b->inputs[i] >= VOCAB) return "input is not a token id";
            int64_t g = stream_index(b, i, end);
            if (g < 0) {
                if (b->targets[i] < 0) return "document token without a target";
                (*eot_seen)++;
                continue;
            }
            if (g >= td->n) return "token id outside the stream";
            if (first < 0) first = g - (i - start);
            if (g != first + (i - start)) return "segment is not a contiguous run of the stream";
            if (b->inputs[i] == SHARD_EOT) (*eot_seen)++;
            else seen[g]++;
            int64_t next = g + 1; /* end of stream or a document start: end-of-text */
            int want = next == td->n || td->doc_start[td->doc_of[next]] == next ? SHARD_EOT : (int)(ID_BASE + next);
            if (b->targets[i] != want) return "target is not the next stream token";
        }
        if (first < 0) continue; /* a lone end-of-text: nothing more to trace */
        int64_t d = td->doc_of[first], doc_len = td->doc_start[d + 1] - td->doc_start[d];
        int64_t off = first - td->doc_start[d];
        if (first + len > td->doc_start[d + 1]) return "segment crosses a document boundary";
        if (off != 0 && start % T != 0 && mode == PACK_CHUNK) return "chunk: a document resumes mid-row";
        if (mode == PACK_BESTFIT) {
            if (doc_len <= T && (off != 0 || len != doc_len)) return "bestfit split a document that fits in a row";
            if (off % T != 0 || len != (doc_len - off < T ? doc_len - off : T)) return "bestfit piece has wrong bounds";
        }
    }
    return NULL;
}

/* One epoch with B=1: every token once, every document start once. */
static void test_loader_epoch(const TestData *td, PackingMode mode, uint64_t seed, int T)
{
    DataLoader dl;
    PackedBatch b;
    dataloader_init(&dl, td->pattern, 1, T, 0, 1, mode, seed, VOCAB, SHARD_EOT);
    packed_batch_alloc(&b, 1, T);
    int *seen = (int *)calloc_or_die((size_t)td->n, sizeof(int));
    int64_t eot = 0, padding = 0, rows = 0;
    const char *err = NULL;
    for (;;) {
        poison_batch(&b);
        dataloader_next(&dl, &b);
        if (dataloader_get_state(&dl).epoch != 0) break; /* that row opened epoch 1 */
        rows++;
        if (!err) err = check_loader_batch(&b, td, mode, seen, &eot, &padding);
    }
    int64_t once = 0;
    for (int64_t g = 0; g < td->n; g++) {
        int is_doc_start = td->doc_start[td->doc_of[g]] == g;
        once += is_doc_start || seen[g] == 1;
    }
    char name[96];
    snprintf(name, sizeof(name), "loader_batches_valid_%s_seed%llu_T%d", packing_mode_name(mode),
             (unsigned long long)seed, T);
    check(!err, name, "%s", err);
    snprintf(name, sizeof(name), "loader_every_token_once_%s_seed%llu_T%d", packing_mode_name(mode),
             (unsigned long long)seed, T);
    check(once == td->n && eot == td->num_docs, name, "%lld of %lld tokens seen exactly once, %lld of %d document starts",
          (long long)once, (long long)td->n, (long long)eot, td->num_docs);
    snprintf(name, sizeof(name), "loader_stats_%s_seed%llu_T%d", packing_mode_name(mode), (unsigned long long)seed, T);
    check(dl.shards_counted == td->num_shards && dl.stats.rows == rows && dl.stats.padding == padding &&
              dl.stats.tokens == td->n && dl.stats.docs == td->num_docs,
          name, "stats rows %lld padding %lld tokens %lld; counted rows %lld padding %lld",
          (long long)dl.stats.rows, (long long)dl.stats.padding, (long long)dl.stats.tokens, (long long)rows,
          (long long)padding);
    free(seen);
    packed_batch_free(&b);
    dataloader_free(&dl);
}

static int same_batch(const PackedBatch *a, const PackedBatch *b)
{
    size_t n = (size_t)a->B * a->T;
    return a->num_segments == b->num_segments && a->max_seqlen == b->max_seqlen &&
           !memcmp(a->inputs, b->inputs, n * sizeof(int)) && !memcmp(a->targets, b->targets, n * sizeof(int)) &&
           !memcmp(a->pos, b->pos, n * sizeof(int)) &&
           !memcmp(a->cu_seqlens, b->cu_seqlens, ((size_t)a->num_segments + 1) * sizeof(int));
}

/* Row `row` of a equals row `other_row` of b: tokens, targets, positions
   (pos encodes the segment boundaries inside a row). */
static int same_row(const PackedBatch *a, int row, const PackedBatch *b, int other_row)
{
    size_t T = (size_t)a->T, x = row * T, y = other_row * T;
    return !memcmp(a->inputs + x, b->inputs + y, T * sizeof(int)) &&
           !memcmp(a->targets + x, b->targets + y, T * sizeof(int)) &&
           !memcmp(a->pos + x, b->pos + y, T * sizeof(int));
}

/* Saving the state after k batches and restoring it into a fresh loader (and
   into one that has wandered elsewhere) gives the same next batches. */
static void test_resume(const TestData *td, PackingMode mode)
{
    const int B = 3, T = 32, k = 7, m = 60;
    DataLoader a, fresh, moved;
    PackedBatch ba, bb;
    dataloader_init(&a, td->pattern, B, T, 0, 1, mode, 99, VOCAB, SHARD_EOT);
    dataloader_init(&fresh, td->pattern, B, T, 0, 1, mode, 99, VOCAB, SHARD_EOT);
    dataloader_init(&moved, td->pattern, B, T, 0, 1, mode, 99, VOCAB, SHARD_EOT);
    packed_batch_alloc(&ba, B, T);
    packed_batch_alloc(&bb, B, T);
    for (int i = 0; i < k; i++) dataloader_next(&a, &ba);
    for (int i = 0; i < 2 * m; i++) dataloader_next(&moved, &bb);
    DataLoaderState st = dataloader_get_state(&a);
    dataloader_set_state(&fresh, &st);
    dataloader_set_state(&moved, &st);
    int same = 1, epochs_crossed = 0;
    for (int i = 0; i < m; i++) {
        dataloader_next(&a, &ba);
        poison_batch(&bb);
        dataloader_next(&fresh, &bb);
        same &= same_batch(&ba, &bb);
        poison_batch(&bb);
        dataloader_next(&moved, &bb);
        same &= same_batch(&ba, &bb);
    }
    epochs_crossed = (int)dataloader_get_state(&a).epoch;
    char name[64];
    snprintf(name, sizeof(name), "resume_exact_%s", packing_mode_name(mode));
    check(same && epochs_crossed >= 1, name, "resumed batches differ (same=%d) or no epoch crossed (%d)", same,
          epochs_crossed);
    packed_batch_free(&ba);
    packed_batch_free(&bb);
    dataloader_free(&a);
    dataloader_free(&fresh);
    dataloader_free(&moved);
}

/* P ranks of B rows = 1 rank of P*B rows: rank r row i is global row i*P + r.
   And the stream does not depend on B: B calls of 1 row = 1 call of B rows. */
static void test_ranks(const TestData *td, PackingMode mode)
{
    const int P = 3, B = 2, T = 24, steps = 25;
    DataLoader ranks[3], single, one_row;
    PackedBatch rb[3], sb, ob;
    for (int r = 0; r < P; r++) {
        dataloader_init(&ranks[r], td->pattern, B, T, r, P, mode, 5, VOCAB, SHARD_EOT);
        packed_batch_alloc(&rb[r], B, T);
    }
    dataloader_init(&single, td->pattern, B * P, T, 0, 1, mode, 5, VOCAB, SHARD_EOT);
    dataloader_init(&one_row, td->pattern, 1, T, 0, 1, mode, 5, VOCAB, SHARD_EOT);
    packed_batch_alloc(&sb, B * P, T);
    packed_batch_alloc(&ob, 1, T);
    int union_ok = 1, valid = 1, stream_ok = 1;
    for (int step = 0; step < steps; step++) {
        dataloader_next(&single, &sb);
        for (int r = 0; r < P; r++) {
            poison_batch(&rb[r]);
            dataloader_next(&ranks[r], &rb[r]);
            valid &= packed_batch_check(&rb[r]) == NULL;
            for (int i = 0; i < B; i++) union_ok &= same_row(&rb[r], i, &sb, i * P + r);
        }
        for (int i = 0; i < B * P; i++) {
            dataloader_next(&one_row, &ob);
            stream_ok &= same_row(&ob, 0, &sb, i);
        }
    }
    char name[64];
    snprintf(name, sizeof(name), "ranks_union_is_single_rank_%s", packing_mode_name(mode));
    check(union_ok && valid, name, "rank rows differ from the 1-rank batch (valid batches: %d)", valid);
    snprintf(name, sizeof(name), "stream_independent_of_B_%s", packing_mode_name(mode));
    check(stream_ok, name, "B=1 rows differ from the B=%d batch rows", B * P);
    for (int r = 0; r < P; r++) {
        dataloader_free(&ranks[r]);
        packed_batch_free(&rb[r]);
    }
    dataloader_free(&single);
    dataloader_free(&one_row);
    packed_batch_free(&sb);
    packed_batch_free(&ob);
}

/* Rows of one epoch (B=1), as a concatenation of their inputs. */
static int *epoch_rows(DataLoader *dl, int *num_rows)
{
    int T = dl->T, cap = 64, count = 0;
    int *rows = (int *)malloc_or_die((size_t)cap * T * sizeof(int));
    PackedBatch b;
    packed_batch_alloc(&b, 1, T);
    int64_t epoch = dataloader_get_state(dl).epoch;
    for (;;) {
        dataloader_next(dl, &b);
        if (dataloader_get_state(dl).epoch != epoch) break;
        if (count == cap) rows = (int *)realloc(rows, (size_t)(cap *= 2) * T * sizeof(int));
        if (!rows) die("out of memory");
        memcpy(rows + (size_t)count * T, b.inputs, (size_t)T * sizeof(int));
        count++;
    }
    packed_batch_free(&b);
    *num_rows = count;
    return rows;
}

static void test_shuffle(const TestData *td)
{
    const int T = 40;
    DataLoader plain, shuffled;
    dataloader_init(&plain, td->pattern, 1, T, 0, 1, PACK_CHUNK, DATALOADER_NO_SHUFFLE, VOCAB, SHARD_EOT);
    dataloader_init(&shuffled, td->pattern, 1, T, 0, 1, PACK_CHUNK, 1234, VOCAB, SHARD_EOT);
    int n0, n1, m0, m1;
    int *p0 = epoch_rows(&plain, &n0);
    /* epoch_rows consumed the first row of epoch 1 to see the epoch end */
    int *p1 = epoch_rows(&plain, &n1);
    int *s0 = epoch_rows(&shuffled, &m0);
    int *s1 = epoch_rows(&shuffled, &m1);
    size_t bytes = (size_t)n0 * T * sizeof(int);
    /* chunk rows are the stream of each shard; check the full rows of shard 0 */
    int stream_order = n0 > 1;
    for (int64_t i = 0; i < td->doc_start[td->docs_per_shard] / T * T; i++) {
        int64_t want = td->doc_start[td->doc_of[i]] == i ? SHARD_EOT : ID_BASE + i;
        stream_order &= p0[i] == want;
    }
    check(stream_order, "no_shuffle_is_stream_order", "seed 0 rows are not the shards in file order");
    /* epochs after the first lose the row that closed the previous epoch */
    check(n1 == n0 - 1 && !memcmp(p0 + T, p1, (size_t)n1 * T * sizeof(int)), "no_shuffle_epochs_equal",
          "epoch rows differ (%d vs %d rows)", n0, n1);
    check(m0 == n0 && memcmp(p0, s0, bytes) != 0, "shuffle_changes_order", "seeded epoch equals stream order");
    check(m1 == m0 - 1 && memcmp(s0 + T, s1, (size_t)m1 * T * sizeof(int)) != 0, "shuffle_differs_per_epoch",
          "two epochs have the same order");
    free(p0);
    free(p1);
    free(s0);
    free(s1);
    dataloader_free(&plain);
    dataloader_free(&shuffled);
}

/* A uint16 shard reads the same ids as its uint32 twin. */
static void test_uint16_shard(void)
{
    char dir[] = "/tmp/packlm_u16_XXXXXX", p16[64], p32[64];
    if (!mkdtemp(dir)) die("mkdtemp failed");
    snprintf(p16, sizeof(p16), "%s/a.bin", dir);
    snprintf(p32, sizeof(p32), "%s/b.bin", dir);
    Rng r = rng_create(3);
    uint32_t tokens[700];
    for (int i = 0; i < 700; i++) tokens[i] = i % 90 == 0 ? SHARD_EOT : (uint32_t)rng_below(&r, SHARD_EOT);
    write_shard_file(p16, tokens, 700, 2);
    write_shard_file(p32, tokens, 700, 4);
    DataLoader a, b;
    PackedBatch x, y;
    dataloader_init(&a, p16, 4, 50, 0, 1, PACK_BESTFIT, 8, 50257, SHARD_EOT);
    dataloader_init(&b, p32, 4, 50, 0, 1, PACK_BESTFIT, 8, 50257, SHARD_EOT);
    packed_batch_alloc(&x, 4, 50);
    packed_batch_alloc(&y, 4, 50);
    int same = 1;
    for (int i = 0; i < 10; i++) {
        dataloader_next(&a, &x);
        dataloader_next(&b, &y);
        same &= same_batch(&x, &y);
    }
    check(same && a.shard.token_bytes == 2 && b.shard.token_bytes == 4, "uint16_equals_uint32",
          "uint16 and uint32 shards of the same tokens give different batches");
    dataloader_free(&a);
    dataloader_free(&b);
    packed_batch_free(&x);
    packed_batch_free(&y);
    unlink(p16);
    unlink(p32);
    rmdir(dir);
}

/* A dataset of one row still fills a batch of 4: the stream wraps epochs. */
static void test_tiny_dataset_wraps(void)
{
    char dir[] = "/tmp/packlm_tiny_XXXXXX", path[64];
    if (!mkdtemp(dir)) die("mkdtemp failed");
    snprintf(path, sizeof(path), "%s/tiny.bin", dir);
    const uint32_t tokens[7] = {SHARD_EOT, 1, 2, 3, SHARD_EOT, 4, 5};
    write_shard_file(path, tokens, 7, 2);
    DataLoader dl;
    PackedBatch b;
    dataloader_init(&dl, path, 4, 16, 0, 1, PACK_BESTFIT, 9, 50257, SHARD_EOT);
    packed_batch_alloc(&b, 4, 16);
    poison_batch(&b);
    dataloader_next(&dl, &b);
    int rows_equal = 1;
    for (int r = 1; r < 4; r++) rows_equal &= same_row(&b, 0, &b, r);
    DataLoaderState st = dataloader_get_state(&dl);
    check(packed_batch_check(&b) == NULL && rows_equal && st.epoch == 3 && b.num_segments == 12 &&
              b.targets[6] == SHARD_EOT && b.targets[7] == -1,
          "tiny_dataset_wraps_epochs", "batch invalid, rows differ, epoch %lld or %d segments", (long long)st.epoch,
          b.num_segments);
    packed_batch_free(&b);
    dataloader_free(&dl);
    unlink(path);
    rmdir(dir);
}

/* Shards whose documents start with another token (llm.c's Llama 3 shards:
   begin-of-text 128000, uint32), read with that document token: the same
   segments and targets as the GPT-2 shard of the same documents, with 128000
   where that one has 50256 (50256 is an ordinary token there). */
static void test_other_doc_token(void)
{
    char dir[] = "/tmp/packlm_doctoken_XXXXXX", gpt2[64], llama[64];
    if (!mkdtemp(dir)) die("mkdtemp failed");
    snprintf(gpt2, sizeof(gpt2), "%s/gpt2.bin", dir);
    snprintf(llama, sizeof(llama), "%s/llama.bin", dir);
    const uint32_t g[9] = {SHARD_EOT, 1, 2, 3, SHARD_EOT, 4, 5, SHARD_EOT, 6};
    const uint32_t l[9] = {LLAMA3_BOS, 1, SHARD_EOT, 3, LLAMA3_BOS, 4, 5, LLAMA3_BOS, 6};
    write_shard_file(gpt2, g, 9, 4);
    write_shard_file(llama, l, 9, 4);
    DataLoader a, b;
    PackedBatch x, y;
    dataloader_init(&a, gpt2, 1, 12, 0, 1, PACK_BESTFIT, DATALOADER_NO_SHUFFLE, 128256, SHARD_EOT);
    dataloader_init(&b, llama, 1, 12, 0, 1, PACK_BESTFIT, DATALOADER_NO_SHUFFLE, 128256, LLAMA3_BOS);
    packed_batch_alloc(&x, 1, 12);
    packed_batch_alloc(&y, 1, 12);
    poison_batch(&x);
    poison_batch(&y);
    dataloader_next(&a, &x);
    dataloader_next(&b, &y);
    int same = x.num_segments == y.num_segments && packed_batch_check(&y) == NULL;
    for (int s = 0; same && s <= x.num_segments; s++) same = x.cu_seqlens[s] == y.cu_seqlens[s];
    for (int i = 0; same && i < 12; i++) {
        const int gi = x.inputs[i] == SHARD_EOT ? LLAMA3_BOS : x.inputs[i] == 2 ? SHARD_EOT : x.inputs[i];
        const int gt = x.targets[i] == SHARD_EOT ? LLAMA3_BOS : x.targets[i] == 2 ? SHARD_EOT : x.targets[i];
        same = y.inputs[i] == gi && y.targets[i] == gt && x.pos[i] == y.pos[i];
    }
    check(same && x.num_segments == 4, "other_doc_token_segments",
          "documents not found at token 128000 the way they are at 50256 (%d vs %d segments)", y.num_segments,
          x.num_segments);
    dataloader_free(&a);
    dataloader_free(&b);
    packed_batch_free(&x);
    packed_batch_free(&y);
    unlink(gpt2);
    unlink(llama);
    rmdir(dir);
}

/* ------------------------------------------------------------ bad input */

/* Run fn(td) in a child process; PASS when it exits with status 1 and its
   stderr contains `substring` (a clear error, not a crash). */
static void expect_death(const char *name, void (*fn)(const TestData *), const TestData *td, const char *substring)
{
    int fds[2];
    if (pipe(fds) != 0) die("pipe failed");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn(td);
        _exit(0);
    }
    close(fds[1]);
    char err[1024];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(err) - 1 && (r = read(fds[0], err + got, sizeof(err) - 1 - got)) > 0) got += (size_t)r;
    err[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    int exited_1 = WIFEXITED(status) && WEXITSTATUS(status) == 1;
    check(exited_1 && strstr(err, substring), name, "status %d, stderr '%s', wanted exit 1 and '%s'", status, err,
          substring);
}

static void run_state_other_T(const TestData *td)
{
    DataLoader a, b;
    dataloader_init(&a, td->pattern, 2, 16, 0, 1, PACK_BESTFIT, 3, VOCAB, SHARD_EOT);
    dataloader_init(&b, td->pattern, 2, 17, 0, 1, PACK_BESTFIT, 3, VOCAB, SHARD_EOT);
    DataLoaderState st = dataloader_get_state(&a);
    dataloader_set_state(&b, &st);
}

static void run_state_row_out_of_range(const TestData *td)
{
    DataLoader a;
    dataloader_init(&a, td->pattern, 2, 16, 0, 1, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
    DataLoaderState st = dataloader_get_state(&a);
    st.row_pos = 1 << 30;
    dataloader_set_state(&a, &st);
}

static void run_state_other_data(const TestData *td)
{
    DataLoader a, b;
    char one_shard[128];
    snprintf(one_shard, sizeof(one_shard), "%s/shard_000.bin", td->dir);
    dataloader_init(&a, td->pattern, 2, 16, 0, 1, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
    dataloader_init(&b, one_shard, 2, 16, 0, 1, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
    DataLoaderState st = dataloader_get_state(&a);
    dataloader_set_state(&b, &st);
}

static void run_wrong_batch_shape(const TestData *td)
{
    DataLoader a;
    PackedBatch b;
    dataloader_init(&a, td->pattern, 2, 16, 0, 1, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
    packed_batch_alloc(&b, 2, 8);
    dataloader_next(&a, &b);
}

static void run_rank_out_of_range(const TestData *td)
{
    DataLoader a;
    dataloader_init(&a, td->pattern, 2, 16, 3, 3, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
}

static void run_no_match(const TestData *td)
{
    DataLoader a;
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s/nothing_*.bin", td->dir);
    dataloader_init(&a, pattern, 2, 16, 0, 1, PACK_CHUNK, 3, VOCAB, SHARD_EOT);
}

/* late_1.bin has an id >= 50257: its header passes at init, the token scan
   fails when the loader reaches it (after late_0.bin), naming the file. */
static void run_bad_token_later(const TestData *td)
{
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s/late_*.bin", td->dir);
    DataLoader a;
    PackedBatch b;
    dataloader_init(&a, pattern, 4, 16, 0, 1, PACK_CHUNK, DATALOADER_NO_SHUFFLE, 50257, SHARD_EOT);
    packed_batch_alloc(&b, 4, 16);
    for (;;) dataloader_next(&a, &b);
}

static void test_bad_input(const TestData *td)
{
    expect_death("state_other_T_refused", run_state_other_T, td, "this run has seed 3, T 17");
    expect_death("state_row_out_of_range_refused", run_state_row_out_of_range, td, "row 1073741824 is past the");
    expect_death("state_other_data_refused", run_state_other_data, td, "but the data now has 1 shards");
    expect_death("wrong_batch_shape_refused", run_wrong_batch_shape, td, "batch is 2x8 but the loader makes 2x16");
    expect_death("rank_out_of_range_refused", run_rank_out_of_range, td, "rank 3 is not in [0, 3)");
    expect_death("glob_no_match_refused", run_no_match, td, "no shard files match");
    const uint32_t good[7] = {SHARD_EOT, 1, 2, 3, SHARD_EOT, 4, 5}, bad[3] = {SHARD_EOT, 7, 50300};
    char good_path[128], bad_path[128], want[256];
    snprintf(good_path, sizeof(good_path), "%s/late_0.bin", td->dir);
    snprintf(bad_path, sizeof(bad_path), "%s/late_1.bin", td->dir);
    write_shard_file(good_path, good, 7, 2);
    write_shard_file(bad_path, bad, 3, 2);
    snprintf(want, sizeof(want), "shard '%s': token id 50300 at index 2 is not below the vocabulary size 50257",
             bad_path);
    expect_death("bad_token_later_names_file", run_bad_token_later, td, want);
    unlink(good_path);
    unlink(bad_path);
}

/* ------------------------------------------------------------ validator */

/* A valid in-memory shard: header + tokens (n of them, width bytes each). */
static size_t build_shard(unsigned char *buf, int width, int n, int32_t magic, int32_t version, int32_t count)
{
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = magic;
    header[1] = version;
    header[2] = count;
    memcpy(buf, header, sizeof(header));
    for (int i = 0; i < n; i++) {
        uint32_t t = i % 5 == 0 ? SHARD_EOT : (uint32_t)(100 + i);
        if (width == 2) {
            uint16_t t16 = (uint16_t)t;
            memcpy(buf + SHARD_HEADER_BYTES + 2 * i, &t16, 2);
        } else {
            memcpy(buf + SHARD_HEADER_BYTES + 4 * i, &t, 4);
        }
    }
    return SHARD_HEADER_BYTES + (size_t)width * n;
}

static void expect_problem(const char *name, const void *bytes, size_t size, int vocab, const char *substring)
{
    const char *msg = shard_validate(bytes, size, vocab, SHARD_EOT);
    check(msg && strstr(msg, substring), name, "expected a message containing '%s', got '%s'", substring,
          msg ? msg : "(valid)");
}

static void test_validator(void)
{
    static unsigned char buf[SHARD_HEADER_BYTES + 4 * 64 + 8];
    size_t size = build_shard(buf, 2, 40, SHARD_MAGIC_U16, SHARD_VERSION_U16, 40);
    const char *msg = shard_validate(buf, size, 50257, SHARD_EOT);
    check(msg == NULL, "validate_good_uint16", "%s", msg);
    size = build_shard(buf, 4, 40, SHARD_MAGIC_U32, SHARD_VERSION_U32, 40);
    msg = shard_validate(buf, size, 50257, SHARD_EOT);
    check(msg == NULL, "validate_good_uint32", "%s", msg);
    msg = shard_validate(buf, size, 128256, LLAMA3_BOS);
    check(msg && strstr(msg, "first token is 50256, not the document token 128000 (--doc-token)"),
          "validate_other_doc_token", "a shard starting with 50256 read with document token 128000: '%s'",
          msg ? msg : "(valid)");
    expect_problem("validate_empty", buf, 0, 50257, "empty file");
    expect_problem("validate_short_header", buf, 100, 50257, "truncated header");
    size = build_shard(buf, 2, 40, 12345, 1, 40);
    expect_problem("validate_bad_magic", buf, size, 50257, "bad magic 12345");
    size = build_shard(buf, 2, 40, SHARD_MAGIC_U16, 7, 40);
    expect_problem("validate_bad_version", buf, size, 50257, "bad version 7");
    size = build_shard(buf, 2, 40, SHARD_MAGIC_U16, SHARD_VERSION_U16, 40);
    expect_problem("validate_truncated", buf, size - 3, 50257, "truncated: header says 40 tokens");
    size = build_shard(buf, 2, 40, SHARD_MAGIC_U16, SHARD_VERSION_U16, 30);
    expect_problem("validate_count_mismatch", buf, size, 50257, "header token count mismatch");
    size = build_shard(buf, 2, 0, SHARD_MAGIC_U16, SHARD_VERSION_U16, 0);
    expect_problem("validate_zero_tokens", buf, size, 50257, "header token count is 0");
    size = build_shard(buf, 4, 40, SHARD_MAGIC_U32, SHARD_VERSION_U32, -5);
    expect_problem("validate_negative_count", buf, size, 50257, "header token count is -5");
    size = build_shard(buf, 2, 40, SHARD_MAGIC_U16, SHARD_VERSION_U16, 40);
    uint16_t too_big = 50257;
    memcpy(buf + SHARD_HEADER_BYTES + 2 * 21, &too_big, 2);
    expect_problem("validate_token_above_vocab", buf, size, 50257,
                   "token id 50257 at index 21 is not below the vocabulary size 50257");
    uint16_t not_eot = 7;
    memcpy(buf + SHARD_HEADER_BYTES, &not_eot, 2);
    expect_problem("validate_missing_leading_eot", buf, size, 50257, "first token is 7, not the end-of-text");
}

int main(void)
{
    test_validator();
    test_packing_random_streams();
    test_bestfit_padding_is_small();
    test_uint16_shard();
    test_tiny_dataset_wraps();
    test_other_doc_token();

    TestData td;
    make_test_data(&td, 2024, 4, 40, 32);
    for (int mode = 0; mode < 2; mode++) {
        test_loader_epoch(&td, (PackingMode)mode, DATALOADER_NO_SHUFFLE, 32);
        test_loader_epoch(&td, (PackingMode)mode, 77, 32);
        test_loader_epoch(&td, (PackingMode)mode, 77, 5);
        test_resume(&td, (PackingMode)mode);
        test_ranks(&td, (PackingMode)mode);
    }
    test_shuffle(&td);
    test_bad_input(&td);
    free_test_data(&td);
    return test_summary();
}
