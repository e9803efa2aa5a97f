/*
 * test_zero.c — the sharding arithmetic of llmc/zero.h on the CPU: shard
 * offsets and sizes for counts that do and do not divide by the number of
 * ranks, ownership of every element and of every tensor's slice, gradient
 * bucket boundaries against params.h's layout, the cutting of ranges into
 * per-owner pieces, and the rank data partition (rows r, r+P, ...) both as
 * arithmetic and as the dataloader delivers it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataloader.h"
#include "params.h"
#include "rand.h"
#include "shard_file.h"
#include "test.h"
#include "zero.h"

/* Every element of [0, n) is owned by exactly the rank whose range holds it,
 * the ranges are contiguous in rank order and no shard exceeds shard_len. */
static int partition_is_exact(const ZeroPartition *z, char *why, size_t why_len)
{
    size_t expect = 0;
    for (int r = 0; r < z->num_ranks; r++) {
        size_t off = zero_shard_offset(z, r), size = zero_shard_size(z, r);
        if (off != expect) return snprintf(why, why_len, "rank %d starts at %zu, expected %zu", r, off, expect), 0;
        if (size > z->shard_len) return snprintf(why, why_len, "rank %d owns %zu > shard_len %zu", r, size, z->shard_len), 0;
        for (size_t i = off; i < off + size; i++)
            if (zero_owner(z, i) != r) return snprintf(why, why_len, "element %zu: owner %d, expected %d", i, zero_owner(z, i), r), 0;
        expect = off + size;
    }
    if (expect != z->total) return snprintf(why, why_len, "shards cover %zu of %zu elements", expect, z->total), 0;
    return 1;
}

static void test_partitions(void)
{
    const size_t counts[] = {0, 1, 3, 7, 10, 64, 100, 127, 128, 129, 1000, 4099};
    const int ranks[] = {1, 2, 3, 4, 7, 8, 16};
    const size_t aligns[] = {1, 4, ZERO_SHARD_ALIGN};
    int exact = 1, minimal = 1, aligned = 1;
    char why[256] = "";
    for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++)
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
            for (size_t k = 0; k < sizeof(ranks) / sizeof(ranks[0]); k++) {
                ZeroPartition z;
                size_t n = counts[c], P = (size_t)ranks[k], align = aligns[a];
                zero_partition_init(&z, n, ranks[k], align);
                if (exact && !partition_is_exact(&z, why, sizeof(why))) {
                    exact = 0;
                    printf("  n=%zu P=%zu align=%zu: %s\n", n, P, align, why);
                }
                /* the smallest aligned shard length that lets P shards hold n */
                size_t need = (n + P - 1) / P;
                if (z.shard_len < need || (need > 0 && z.shard_len >= need + align) || (need == 0 && z.shard_len != align))
                    minimal = 0;
                if (z.shard_len % align != 0) aligned = 0;
            }
    check(exact, "zero_partition_covers_exactly", "%s", why);
    check(minimal, "zero_shard_len_minimal", "shard_len is not the smallest aligned ceil(n/P)");
    check(aligned, "zero_shard_len_aligned", "shard_len not a multiple of align");

    /* the worked examples of zero.h's header comment */
    ZeroPartition z;
    zero_partition_init(&z, 10, 4, 1);
    size_t s1[4] = {zero_shard_size(&z, 0), zero_shard_size(&z, 1), zero_shard_size(&z, 2), zero_shard_size(&z, 3)};
    check(s1[0] == 3 && s1[1] == 3 && s1[2] == 3 && s1[3] == 1 && zero_shard_offset(&z, 3) == 9, "zero_example_align1",
          "sizes %zu %zu %zu %zu", s1[0], s1[1], s1[2], s1[3]);
    zero_partition_init(&z, 10, 4, 4);
    size_t s4[4] = {zero_shard_size(&z, 0), zero_shard_size(&z, 1), zero_shard_size(&z, 2), zero_shard_size(&z, 3)};
    check(s4[0] == 4 && s4[1] == 4 && s4[2] == 2 && s4[3] == 0 && zero_shard_offset(&z, 3) == 10, "zero_example_align4",
          "sizes %zu %zu %zu %zu", s4[0], s4[1], s4[2], s4[3]);
}

/* Model shapes whose parameter counts do not divide evenly by most P. */
static const char *const MODELS[] = {
    "gpt2:d12,L=3,C=64,NH=4,V=300,T=32",
    "llama:1B,L=2,C=96,NH=6,NKV=2,F=160,V=333,T=64,tied=0",
    "llama:1B,L=1,C=32,NH=2,NKV=1,F=48,V=130,T=16,tied=1",
};
#define NUM_MODELS (int)(sizeof(MODELS) / sizeof(MODELS[0]))

/* Each tensor's owned slices, over ranks in order, tile the tensor exactly. */
static void test_tensor_slices(void)
{
    int ok = 1;
    char why[256] = "";
    for (int m = 0; m < NUM_MODELS; m++) {
        ModelConfig cfg;
        ParamLayout p;
        model_config_parse(&cfg, MODELS[m]);
        param_layout_init(&p, &cfg);
        for (int P = 1; P <= 9 && ok; P++) {
            ZeroPartition z;
            zero_partition_init(&z, p.total, P, ZERO_SHARD_ALIGN);
            size_t owned_total = 0;
            for (int t = 0; t < NUM_PARAM_TENSORS && ok; t++) {
                size_t next = p.offset[t];
                for (int r = 0; r < P; r++) {
                    size_t start, len = zero_tensor_slice(&z, &p, t, r, &start);
                    if (len == 0) continue;
                    if (start != next || zero_owner(&z, start) != r || zero_owner(&z, start + len - 1) != r) {
                        snprintf(why, sizeof(why), "%s P=%d %s rank %d: slice [%zu,+%zu), expected start %zu",
                                 MODELS[m], P, PARAM_NAMES[t], r, start, len, next);
                        ok = 0;
                        break;
                    }
                    next = start + len;
                    owned_total += len;
                }
                if (ok && next != p.offset[t] + p.size[t]) {
                    snprintf(why, sizeof(why), "%s P=%d %s: slices end at %zu, tensor at %zu", MODELS[m], P,
                             PARAM_NAMES[t], next, p.offset[t] + p.size[t]);
                    ok = 0;
                }
            }
            if (ok && owned_total != p.total) {
                snprintf(why, sizeof(why), "%s P=%d: slices hold %zu of %zu", MODELS[m], P, owned_total, p.total);
                ok = 0;
            }
        }
    }
    check(ok, "zero_tensor_slices_tile_tensors", "%s", why);
}

/* Buckets: every element in exactly one bucket, bucket l = layer l's slices. */
static void test_buckets(void)
{
    for (int m = 0; m < NUM_MODELS; m++) {
        ModelConfig cfg;
        ParamLayout p;
        model_config_parse(&cfg, MODELS[m]);
        param_layout_init(&p, &cfg);
        unsigned char *hits = (unsigned char *)calloc_or_die(p.total, 1);
        int layers_ok = 1, last_ok = 1, counts_ok = 1;
        int expected_layer_segments = 0;
        for (int t = 0; t < NUM_PARAM_TENSORS; t++) expected_layer_segments += param_is_per_layer(t) && p.size[t] > 0;
        for (int b = 0; b < zero_num_buckets(&cfg); b++) {
            GradBucket bucket;
            grad_bucket_init(&bucket, &p, &cfg, b);
            size_t sum = 0;
            for (int s = 0; s < bucket.num_segments; s++) {
                ZeroSegment seg = bucket.seg[s];
                for (size_t i = seg.offset; i < seg.offset + seg.size; i++) hits[i]++;
                sum += seg.size;
                /* which tensor holds this segment, and is it the right part of it */
                int t = 0;
                while (t < NUM_PARAM_TENSORS - 1 && !(p.size[t] > 0 && p.offset[t] <= seg.offset && seg.offset < p.offset[t] + p.size[t])) t++;
                if (b < cfg.num_layers) {
                    size_t want = (size_t)(PARAM_LAYER_PTR((float *)0, &p, &cfg, t, b) - (float *)0);
                    if (!param_is_per_layer(t) || seg.offset != want || seg.size != p.size[t] / (size_t)cfg.num_layers)
                        layers_ok = 0;
                } else if (param_is_per_layer(t) || seg.offset != p.offset[t] || seg.size != p.size[t]) {
                    last_ok = 0;
                }
            }
            if (sum != bucket.elements) counts_ok = 0;
            if (b < cfg.num_layers && bucket.num_segments != expected_layer_segments) counts_ok = 0;
        }
        size_t wrong = 0;
        for (size_t i = 0; i < p.total; i++) wrong += hits[i] != 1;
        char name[96];
        snprintf(name, sizeof(name), "grad_buckets_cover_once[%d]", m);
        check(wrong == 0, name, "%s: %zu elements not in exactly one bucket", MODELS[m], wrong);
        snprintf(name, sizeof(name), "grad_buckets_layer_slices[%d]", m);
        check(layers_ok, name, "%s: a layer bucket segment is not that layer's slice of a per-layer tensor", MODELS[m]);
        snprintf(name, sizeof(name), "grad_buckets_last_is_nonlayer[%d]", m);
        check(last_ok, name, "%s: the last bucket holds something other than whole non-layer tensors", MODELS[m]);
        snprintf(name, sizeof(name), "grad_buckets_counts[%d]", m);
        check(counts_ok, name, "%s: segment counts or element sums disagree", MODELS[m]);
        free(hits);
    }
}

/* Pieces: cover the range in order, each inside its owner's shard. */
static void test_pieces(void)
{
    Rng rng = rng_create(1234);
    int ok = 1;
    char why[256] = "";
    ZeroPiece pieces[64];
    for (int trial = 0; trial < 2000 && ok; trial++) {
        ZeroPartition z;
        size_t n = 1 + rng_below(&rng, 5000);
        int P = 1 + (int)rng_below(&rng, 40);
        zero_partition_init(&z, n, P, trial % 2 ? 1 : ZERO_SHARD_ALIGN);
        size_t off = rng_below(&rng, n), size = rng_below(&rng, n - off + 1);
        int count = zero_split_by_owner(&z, off, size, pieces);
        size_t next = off;
        for (int i = 0; i < count && ok; i++) {
            ZeroPiece q = pieces[i];
            size_t so = zero_shard_offset(&z, q.owner), ss = zero_shard_size(&z, q.owner);
            if (q.offset != next || q.size == 0 || q.offset < so || q.offset + q.size > so + ss ||
                (i > 0 && q.owner <= pieces[i - 1].owner)) {
                snprintf(why, sizeof(why), "n=%zu P=%d range [%zu,+%zu) piece %d [%zu,+%zu) owner %d", n, P, off, size,
                         i, q.offset, q.size, q.owner);
                ok = 0;
            }
            next = q.offset + q.size;
        }
        if (ok && (next != off + size || count > P)) {
            snprintf(why, sizeof(why), "n=%zu P=%d range [%zu,+%zu): %d pieces end at %zu", n, P, off, size, count, next);
            ok = 0;
        }
    }
    check(ok, "zero_pieces_split_at_shard_boundaries", "%s", why);
}

/* Rows r, r+P, ...: the ranks' rows are the global batch, each row once. */
static void test_data_partition(void)
{
    int ok = 1;
    for (int P = 1; P <= 8; P++)
        for (int B = 1; B <= 5; B++) {
            int *seen = (int *)calloc_or_die((size_t)B * P, sizeof(int));
            for (int r = 0; r < P; r++)
                for (int j = 0; j < B; j++) {
                    int g = zero_global_row(j, r, P);
                    if (g < 0 || g >= B * P || g % P != r) ok = 0;
                    else seen[g]++;
                }
            for (int g = 0; g < B * P; g++) ok &= seen[g] == 1;
            free(seen);
        }
    check(ok, "zero_rank_rows_partition_global_batch", "some global row is not read by exactly one rank");
}

/* A shard of random documents (llm.c format, uint16 tokens) at `path`. */
static void write_test_shard(const char *path, int num_tokens, Rng *rng)
{
    uint32_t *tokens = (uint32_t *)malloc_or_die((size_t)num_tokens * sizeof(uint32_t));
    for (int i = 0; i < num_tokens; i++)
        tokens[i] = (uint32_t)(i == 0 || rng_below(rng, 40) == 0 ? SHARD_EOT : rng_below(rng, 50000));
    write_shard_file(path, tokens, num_tokens, 2);
    free(tokens);
}

/* Rank r's local row j of every micro-batch is row zero_global_row(j, r, P)
 * of the one-rank loader's batch of B*P rows, for both packing modes. */
static void test_dataloader_rows(void)
{
    char dir[] = "/tmp/packlm_test_zero_XXXXXX", path[256], pattern[256];
    if (!mkdtemp(dir)) die("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/rows_train_000000.bin", dir);
    snprintf(pattern, sizeof(pattern), "%s/rows_train_*.bin", dir);
    Rng rng = rng_create(99);
    write_test_shard(path, 20000, &rng);
    const int B = 3, T = 32, steps = 4;
    for (int mode = PACK_CHUNK; mode <= PACK_BESTFIT; mode++)
        for (int P = 1; P <= 4; P++) {
            DataLoader global, *local = (DataLoader *)malloc_or_die((size_t)P * sizeof(DataLoader));
            PackedBatch gb, lb;
            dataloader_init(&global, pattern, B * P, T, 0, 1, (PackingMode)mode, 5, 50257, SHARD_EOT);
            for (int r = 0; r < P; r++)
                dataloader_init(&local[r], pattern, B, T, r, P, (PackingMode)mode, 5, 50257, SHARD_EOT);
            packed_batch_alloc(&gb, B * P, T);
            packed_batch_alloc(&lb, B, T);
            int ok = 1;
            for (int s = 0; s < steps; s++) {
                dataloader_next(&global, &gb);
                for (int r = 0; r < P; r++) {
                    dataloader_next(&local[r], &lb);
                    for (int j = 0; j < B; j++) {
                        size_t g = (size_t)zero_global_row(j, r, P) * T, l = (size_t)j * T;
                        ok &= memcmp(gb.inputs + g, lb.inputs + l, T * sizeof(int)) == 0 &&
                              memcmp(gb.targets + g, lb.targets + l, T * sizeof(int)) == 0 &&
                              memcmp(gb.pos + g, lb.pos + l, T * sizeof(int)) == 0;
                    }
                }
            }
            char name[96];
            snprintf(name, sizeof(name), "dataloader_rank_rows[%s,P=%d]", mode == PACK_CHUNK ? "chunk" : "bestfit", P);
            check(ok, name, "a rank's row differs from the global batch's row j*P + r");
            for (int r = 0; r < P; r++) dataloader_free(&local[r]);
            dataloader_free(&global);
            packed_batch_free(&gb);
            packed_batch_free(&lb);
            free(local);
        }
    unlink(path);
    rmdir(dir);
}

/* Optimizer state: full at stage 0, split without loss or overlap from stage 1. */
static void test_memory(void)
{
    ZeroPartition z;
    size_t n = 1000003;
    int P = 7;
    zero_partition_init(&z, n, P, ZERO_SHARD_ALIGN);
    size_t sum1 = 0, max1 = 0;
    for (int r = 0; r < P; r++) {
        size_t o = zero_memory(&z, 1, r).optimizer;
        sum1 += o;
        if (o > max1) max1 = o;
    }
    ZeroMemory m0 = zero_memory(&z, 0, 3), m2 = zero_memory(&z, 2, 3);
    check(m0.optimizer == n * 12 && m0.params == n * 2 && m0.grads == n * 2, "zero_memory_stage0",
          "stage 0: %zu / %zu / %zu bytes", m0.params, m0.grads, m0.optimizer);
    check(sum1 == n * 12 && max1 <= z.shard_len * 12, "zero_memory_stage1_sharded",
          "stage 1 shards sum to %zu (want %zu), largest %zu", sum1, n * 12, max1);
    check(m2.optimizer == zero_shard_size(&z, 3) * 12, "zero_memory_stage2_sharded", "stage 2 rank 3: %zu", m2.optimizer);

    /* the optimizer ranges of all ranks tile the buffer from stage 1 on; stage 0 is the whole buffer everywhere */
    int ranges_ok = 1;
    for (int stage = 0; stage <= 2; stage++) {
        size_t next = 0;
        for (int r = 0; r < P; r++) {
            size_t off, size;
            zero_opt_range(&z, stage, r, &off, &size);
            if (stage == 0) {
                ranges_ok &= off == 0 && size == n;
            } else {
                ranges_ok &= off == next;
                next = off + size;
            }
        }
        if (stage > 0) ranges_ok &= next == n;
    }
    check(ranges_ok, "zero_opt_ranges", "optimizer ranges do not tile the buffer (or stage 0 is not whole)");

    /* resuming: the same ranks and range pass; another world size or stage is refused, naming both */
    char msg[512];
    size_t off1, size1;
    zero_opt_range(&z, 1, 3, &off1, &size1);
    check(zero_resume_problem(&z, 1, 3, (size_t)P, off1, size1, msg, sizeof(msg)) == NULL, "zero_resume_same_layout",
          "refused: %s", msg);
    const char *other_world = zero_resume_problem(&z, 1, 3, 2, off1, size1, msg, sizeof(msg));
    check(other_world && strstr(msg, "2 ranks") && strstr(msg, "this job has 7"), "zero_resume_other_world_size",
          "message: %s", other_world ? msg : "(accepted)");
    const char *other_stage = zero_resume_problem(&z, 0, 3, (size_t)P, off1, size1, msg, sizeof(msg));
    check(other_stage && strstr(msg, "ZeRO stage"), "zero_resume_other_stage", "message: %s",
          other_stage ? msg : "(accepted)");
}

int main(void)
{
    test_partitions();
    test_tensor_slices();
    test_buckets();
    test_pieces();
    test_data_partition();
    test_dataloader_rows();
    test_memory();
    return test_summary();
}
