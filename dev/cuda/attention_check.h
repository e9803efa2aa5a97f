/*
 * attention_check.h — what dev/cuda/attention_forward.cu,
 * dev/cuda/attention_backward.cu and test/test_attention.cu share: a packed
 * attention problem on fresh random inputs, GPU runs of llmc/attention.cuh
 * with poisoned outputs checked against the fp32 CPU oracle
 * llmc/attention_ref.h, the list of correctness cases, and the benchmark
 * workload (log-normal documents packed into rows).
 *
 * Every check and benchmark runs on the path chosen with
 * attention_select_path (sm80 or sm90, see attention.cuh), whose name
 * prefixes the PASS/FAIL lines and the benchmark rows.
 *
 * Shapes as in attention.cuh: qkv (N, (NH + 2*NKV) * HD) bf16, out/dout
 * (N, NH*HD) bf16, lse (NH, N) fp32, cu_seqlens (S + 1) int32. Host copies
 * are fp32 holding exactly the bf16 values the GPU sees; the benchmark draws
 * its inputs on the device and keeps no host copy. attn_check_small also runs
 * on 2-block grids (attention_grid_limit), so small inputs exercise the
 * persistent kernels' several-items-per-block path.
 */
#ifndef PACKLM_ATTENTION_CHECK_H
#define PACKLM_ATTENTION_CHECK_H

#include <time.h>

#include "attention.cuh"
#include "attention_ref.h"
#include "../../test/gpu_check.h"

/* Tolerances on the relative L2 error vs the fp32 reference. out, dq, dk, dv
   pass through bf16 (inputs, probabilities fed to the tensor cores, outputs:
   ~4e-3 each); lse stays fp32 after the bf16 inputs. */
#define ATTN_TOL_OUT 1e-2
#define ATTN_TOL_LSE 1e-4
#define ATTN_TOL_GRAD 1e-2

struct AttnProblem {
    int N, S, NH, NKV, HD, max_seqlen;
    std::vector<int> cu_seqlens;
    std::vector<float> qkv, dout; /* bf16-exact host values */
    floatX *d_qkv, *d_out, *d_dout, *d_dqkv;
    float *d_lse;
    int *d_cu;
    void *d_ws;
};

/* The paths this card and binary run: sm80 always, sm90 where it can. */
static std::vector<AttentionPath> attn_available_paths(void)
{
    std::vector<AttentionPath> paths = {ATTENTION_PATH_SM80};
    if (!attention_sm90_unavailable()[0]) paths.push_back(ATTENTION_PATH_SM90);
    return paths;
}

static inline size_t attn_qkv_width(const AttnProblem &p) { return (size_t)(p.NH + 2 * p.NKV) * p.HD; }

/* Standard normal bf16 values made on the device from mix_hash
   (cuda_common.h; Box-Muller on two 24-bit uniforms per value): the
   benchmark's T=8192 problem holds ~0.5 G values, which take a minute to draw
   on the host and milliseconds here. */
__global__ void attn_fill_normal_kernel(floatX *x, size_t n, uint32_t seed)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const uint32_t a = mix_hash(seed, 2 * i), b = mix_hash(seed, 2 * i + 1);
        const float u1 = ((a >> 8) + 1) * (1.0f / 16777216.0f), u2 = (b >> 8) * (1.0f / 16777216.0f); /* (0,1], [0,1) */
        x[i] = (floatX)(sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
    }
}

/* A problem on these segment lengths. host_inputs: qkv and dout drawn on the
   host and kept there too (for the CPU reference); otherwise drawn on the
   device only (benchmarks; p.qkv and p.dout stay empty). qkv_scale: the
   standard deviation of the host-drawn qkv (dout: 1). */
static AttnProblem attn_problem_create(const std::vector<int> &lengths, int NH, int NKV, int HD, Rng *rng,
                                       bool host_inputs = true, float qkv_scale = 1.0f)
{
    AttnProblem p;
    p.S = (int)lengths.size();
    p.NH = NH;
    p.NKV = NKV;
    p.HD = HD;
    p.cu_seqlens.assign(1, 0);
    p.max_seqlen = 0;
    for (int len : lengths) {
        if (len < 1) die("attention case: segment length %d < 1", len);
        p.cu_seqlens.push_back(p.cu_seqlens.back() + len);
        p.max_seqlen = std::max(p.max_seqlen, len);
    }
    p.N = p.cu_seqlens.back();
    const size_t nqkv = (size_t)p.N * attn_qkv_width(p), nout = (size_t)p.N * NH * HD;
    cudaCheck(cudaMalloc(&p.d_qkv, nqkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&p.d_dqkv, nqkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&p.d_out, nout * sizeof(floatX)));
    cudaCheck(cudaMalloc(&p.d_dout, nout * sizeof(floatX)));
    cudaCheck(cudaMalloc(&p.d_lse, (size_t)NH * p.N * sizeof(float)));
    cudaCheck(cudaMalloc(&p.d_cu, (p.S + 1) * sizeof(int)));
    cudaCheck(cudaMalloc(&p.d_ws, attention_workspace_bytes(p.N, NH, NKV, HD)));
    cudaCheck(cudaMemcpy(p.d_cu, p.cu_seqlens.data(), (p.S + 1) * sizeof(int), cudaMemcpyHostToDevice));
    attention_plan(p.d_ws, p.d_cu, p.S, p.max_seqlen, p.N, 0);
    if (!host_inputs) {
        attn_fill_normal_kernel<<<1024, 256>>>(p.d_qkv, nqkv, (uint32_t)rng_u64(rng));
        cudaCheckLaunch();
        attn_fill_normal_kernel<<<1024, 256>>>(p.d_dout, nout, (uint32_t)rng_u64(rng));
        cudaCheckLaunch();
        return p;
    }
    p.qkv = random_bf16_values(rng, nqkv, qkv_scale); /* normal, bf16-exact */
    p.dout = random_bf16_values(rng, nout, 1.0f);
    copy_to_device_bf16(p.d_qkv, p.qkv);
    copy_to_device_bf16(p.d_dout, p.dout);
    return p;
}

static void attn_problem_free(AttnProblem &p)
{
    cudaCheck(cudaFree(p.d_qkv));
    cudaCheck(cudaFree(p.d_dqkv));
    cudaCheck(cudaFree(p.d_out));
    cudaCheck(cudaFree(p.d_dout));
    cudaCheck(cudaFree(p.d_lse));
    cudaCheck(cudaFree(p.d_cu));
    cudaCheck(cudaFree(p.d_ws));
}

static void attn_run_forward(AttnProblem &p, cudaStream_t s = 0)
{
    attention_forward(p.d_out, p.d_lse, p.d_qkv, p.d_cu, p.S, p.max_seqlen, p.N, p.NH, p.NKV, p.HD, p.d_ws, s);
}

static void attn_run_backward(AttnProblem &p, cudaStream_t s = 0)
{
    attention_backward(p.d_dqkv, p.d_dout, p.d_qkv, p.d_out, p.d_lse, p.d_cu, p.S, p.max_seqlen, p.N, p.NH, p.NKV,
                       p.HD, p.d_ws, s);
}

static size_t count_non_finite(const std::vector<float> &x)
{
    size_t bad = 0;
    for (float v : x) bad += !isfinite(v);
    return bad;
}

/* Columns [col0, col0 + width) of a (rows, pitch) matrix. */
static std::vector<float> attn_columns(const std::vector<float> &m, size_t pitch, size_t col0, size_t width)
{
    const size_t rows = m.size() / pitch;
    std::vector<float> out(rows * width);
    for (size_t r = 0; r < rows; r++) memcpy(&out[r * width], &m[r * pitch + col0], width * sizeof(float));
    return out;
}

/* Check one quantity: fully written (no NaN left from the poison), then the
   relative L2 error against the reference. */
static void attn_check_quantity(const char *case_name, const char *what, const std::vector<float> &got,
                                const std::vector<float> &want, double tol)
{
    char name[256];
    const char *path = attention_path_name(attention_active_path());
    snprintf(name, sizeof(name), "%s: %s %s written", path, case_name, what);
    const size_t bad = count_non_finite(got);
    check(bad == 0, name, "%zu of %zu values are NaN/Inf (unwritten or overflow)", bad, got.size());
    snprintf(name, sizeof(name), "%s: %s %s", path, case_name, what);
    const double err = rel_l2_error(got.data(), want.data(), got.size());
    check(err <= tol, name, "relative L2 error %.3e > %.1e", err, tol);
    printf("  %s %-40s %-4s rel L2 %.2e (bound %.0e)\n", path, case_name, what, err, tol);
}

/* Forward (and backward when `backward`) of one problem on the GPU with
   NaN-poisoned outputs, compared with the CPU reference. */
static void attn_check_problem(const char *name, AttnProblem &p, int backward)
{
    const size_t nout = (size_t)p.N * p.NH * p.HD, nlse = (size_t)p.NH * p.N, width = attn_qkv_width(p);
    cudaCheck(cudaMemset(p.d_out, 0xff, nout * sizeof(floatX)));
    cudaCheck(cudaMemset(p.d_lse, 0xff, nlse * sizeof(float)));
    attn_run_forward(p);
    cudaCheck(cudaGetLastError());
    cudaCheck(cudaDeviceSynchronize());

    std::vector<float> out_ref(nout), lse_ref(nlse);
    attention_forward_cpu(out_ref.data(), lse_ref.data(), p.qkv.data(), p.cu_seqlens.data(), p.S, p.N, p.NH, p.NKV,
                          p.HD);
    attn_check_quantity(name, "out", download(p.d_out, nout), out_ref, ATTN_TOL_OUT);
    attn_check_quantity(name, "lse", download(p.d_lse, nlse), lse_ref, ATTN_TOL_LSE);
    if (!backward) return;

    cudaCheck(cudaMemset(p.d_dqkv, 0xff, (size_t)p.N * width * sizeof(floatX)));
    attn_run_backward(p);
    cudaCheck(cudaGetLastError());
    cudaCheck(cudaDeviceSynchronize());
    std::vector<float> dqkv_ref((size_t)p.N * width);
    attention_backward_cpu(dqkv_ref.data(), p.dout.data(), p.qkv.data(), out_ref.data(), lse_ref.data(),
                           p.cu_seqlens.data(), p.S, p.N, p.NH, p.NKV, p.HD);
    const std::vector<float> dqkv = download(p.d_dqkv, (size_t)p.N * width);
    const size_t qw = (size_t)p.NH * p.HD, kw = (size_t)p.NKV * p.HD;
    attn_check_quantity(name, "dq", attn_columns(dqkv, width, 0, qw), attn_columns(dqkv_ref, width, 0, qw),
                        ATTN_TOL_GRAD);
    attn_check_quantity(name, "dk", attn_columns(dqkv, width, qw, kw), attn_columns(dqkv_ref, width, qw, kw),
                        ATTN_TOL_GRAD);
    attn_check_quantity(name, "dv", attn_columns(dqkv, width, qw + kw, kw),
                        attn_columns(dqkv_ref, width, qw + kw, kw), ATTN_TOL_GRAD);
}

/* The backward `runs` times: every dqkv must be bit-identical to the first. */
static void attn_check_deterministic(const char *name, AttnProblem &p, int runs)
{
    const size_t n = (size_t)p.N * attn_qkv_width(p);
    attn_run_forward(p);
    std::vector<floatX> first(n), again(n);
    int identical = 1;
    for (int r = 0; r < runs; r++) {
        cudaCheck(cudaMemset(p.d_dqkv, 0xff, n * sizeof(floatX)));
        attn_run_backward(p);
        cudaCheck(cudaMemcpy(r == 0 ? first.data() : again.data(), p.d_dqkv, n * sizeof(floatX),
                             cudaMemcpyDeviceToHost));
        if (r > 0 && memcmp(first.data(), again.data(), n * sizeof(floatX)) != 0) identical = 0;
    }
    size_t unwritten = 0; /* identical poison would also compare equal */
    for (floatX x : first) unwritten += !isfinite(__bfloat162float(x));
    char label[256];
    snprintf(label, sizeof(label), "%s: %s", attention_path_name(attention_active_path()), name);
    check(identical && unwritten == 0, label, "dqkv differs between runs or has %zu NaN/Inf values", unwritten);
}

/* ------------------------------------------------------------ the cases */

struct AttnCase {
    const char *name;
    std::vector<int> lengths;
    int NH, NKV, HD;
    float qkv_scale = 1.0f; /* standard deviation of q, k, v */
};

static std::vector<AttnCase> attn_cases(Rng *rng)
{
    std::vector<AttnCase> cases;
    std::vector<int> tiny; /* many 1-3 token documents */
    for (int n = 0; n < 700;) {
        int len = 1 + (int)rng_below(rng, 3);
        tiny.push_back(len);
        n += len;
    }
    cases.push_back({"tiny docs hd64", tiny, 4, 4, 64});
    cases.push_back({"tiny docs hd128 gqa2", tiny, 4, 2, 128});
    const std::vector<int> multiples = {64, 128, 192, 64};
    const std::vector<int> off_by_one = {63, 65, 127, 129, 1, 191, 193};
    for (int HD : {64, 128}) {
        cases.push_back({HD == 64 ? "tile multiples hd64" : "tile multiples hd128", multiples, 2, 2, HD});
        cases.push_back({HD == 64 ? "off by one hd64" : "off by one hd128", off_by_one, 2, 2, HD});
    }
    std::vector<int> mixed; /* N = 1000: not a multiple of the tile */
    for (int n = 0; n < 1000;) {
        int len = std::min(1000 - n, 1 + (int)rng_below(rng, 300));
        mixed.push_back(len);
        n += len;
    }
    cases.push_back({"N=1000 gqa 4:1 hd64", mixed, 8, 2, 64});
    cases.push_back({"N=1000 gqa 8:1 hd128", mixed, 8, 1, 128});
    cases.push_back({"N=1000 gqa 8:1 hd64", mixed, 16, 2, 64});
    cases.push_back({"N=1000 gqa 3:1 hd128", mixed, 6, 2, 128}); /* a group the sm90 forward does not pack */
    /* The sm90 forward packs G = 2, 4, 8 query heads into tiles of 64, 32,
       16 tokens: lengths at and next to those heights and to the 128-key
       tiles. */
    const std::vector<int> off_by_one_packed = {15, 16, 17, 1, 31, 32, 33, 2, 63, 64, 65, 95, 97, 127, 128, 129, 8, 47};
    cases.push_back({"packed off by one gqa 2:1 hd64", off_by_one_packed, 4, 2, 64});
    cases.push_back({"packed off by one gqa 4:1 hd64", off_by_one_packed, 8, 2, 64});
    cases.push_back({"packed off by one gqa 8:1 hd128", off_by_one_packed, 8, 1, 128});
    cases.push_back({"off by one gqa 4:1 hd128", off_by_one_packed, 8, 2, 128});
    cases.push_back({"tiny docs gqa 8:1 hd64", tiny, 8, 1, 64});
    /* The sm90 forward's split items: a document's last tile of 1 to 64 rows
       (1 to 64 / G tokens packed), after 1 to 4 whole kv tiles (the second
       warpgroup takes every other one: as many as the first, or one fewer) */
    const std::vector<int> split_tiles = {129, 192, 257, 320, 385, 448, 513, 1, 64, 600};
    cases.push_back({"split tiles hd64", split_tiles, 2, 2, 64});
    cases.push_back({"split tiles gqa 4:1 hd128", split_tiles, 8, 2, 128});
    cases.push_back({"one segment of 1500 gqa 8:1 hd128", {1500}, 8, 1, 128});
    cases.push_back({"one segment of 8192 hd64", {8192}, 1, 1, 64});
    /* q, k, v of standard deviation 3 (scaled scores of deviation 9 instead
       of 1): a row's max then rises by more than the sm90 forward's rescale
       slack (8 in log2 units, 5.5 in natural ones) from one 128-key tile to
       the next about once in seven, which with unit inputs almost never
       happens, so its conditional O rescale is taken both ways */
    cases.push_back({"sharp scores hd128", {1000, 37, 300}, 2, 2, 128, 3.0f});
    cases.push_back({"sharp scores gqa 4:1 hd64", {1000, 37, 300}, 8, 2, 64, 3.0f});
    cases.push_back({"split tiles sharp scores hd128", split_tiles, 2, 2, 128, 3.0f});
    return cases;
}

/* Every case, forward only or forward and backward; then the determinism check. */
/* Four small cases: three GQA (2:1 and 4:1 at HD 64, 8:1 at HD 128: packed by the sm90 forward)
   and one multi-head HD 128 case (unpacked: the staged epilogue on 128-token tiles),
   whose lengths cross 16-, 32-, 64- and 128-row tiles, each run
   with the persistent grid (the sm90 forward's) as the card sizes it and
   again capped at two blocks, so that every block walks several work items
   in a row (its producer running into the next item) even on inputs this small. */
static void attn_check_small(int backward, Rng *rng)
{
    const AttnCase small[] = {{"small gqa 2:1 hd64", {70, 1, 3, 129, 20}, 4, 2, 64},
                              {"small gqa 8:1 hd128", {5, 130, 33, 257}, 8, 1, 128},
                              {"small gqa 4:1 hd64", {17, 1, 40, 31, 16, 33, 64}, 4, 1, 64},
                              {"small mha hd128", {5, 130, 33, 257}, 2, 2, 128}};
    const unsigned saved_limit = attention_grid_limit;
    for (unsigned limit : {0u, 2u}) {
        attention_grid_limit = limit;
        const char *suffix = limit ? ", 2 blocks" : "";
        for (const AttnCase &c : small) {
            AttnProblem p = attn_problem_create(c.lengths, c.NH, c.NKV, c.HD, rng);
            char name[64];
            snprintf(name, sizeof(name), "%s%s", c.name, suffix);
            attn_check_problem(name, p, backward);
            attn_problem_free(p);
        }
    }
    attention_grid_limit = saved_limit;
}

static void attn_check_all(int backward, Rng *rng)
{
    for (const AttnCase &c : attn_cases(rng)) {
        AttnProblem p = attn_problem_create(c.lengths, c.NH, c.NKV, c.HD, rng, true, c.qkv_scale);
        attn_check_problem(c.name, p, backward);
        attn_problem_free(p);
    }
    attn_check_small(backward, rng);
    if (backward) {
        std::vector<int> lengths = {300, 1, 700, 64, 935};
        AttnProblem p = attn_problem_create(lengths, 8, 2, 128, rng);
        attn_check_deterministic("backward bit-identical over 10 runs", p, 10);
        attn_problem_free(p);
    }
}

/* Seed from the clock unless --seed N is given; printed so a failure can be replayed. */
static uint64_t attn_seed_from_args(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--seed") == 0) seed = (uint64_t)parse_long_or_die(argv[i + 1], "--seed");
    printf("seed %llu\n", (unsigned long long)seed);
    return seed;
}

/* The checks of a dev program on each of `paths`: attn_check_small
   (`small`, for compute-sanitizer) or every case of attn_check_all; forward
   only or forward and backward. */
static void attn_check_paths(const std::vector<AttentionPath> &paths, int backward, int small, Rng *rng)
{
    for (AttentionPath path : paths) {
        attention_select_path(path);
        if (small)
            attn_check_small(backward, rng);
        else
            attn_check_all(backward, rng);
    }
}

/* ---------------------------------------------------------- benchmark */

/* Documents with log-normal lengths (median ~400, mean ~650) packed in stream
   order into rows of T tokens, cut at row ends; N tokens in all. */
static std::vector<int> attn_benchmark_lengths(int N, int T, Rng *rng)
{
    std::vector<int> lengths;
    int row_left = T, doc_left = 0;
    for (int n = 0; n < N;) {
        if (doc_left == 0) doc_left = std::max(1, (int)lround(exp(5.99 + 0.985 * rng_normal(rng))));
        const int piece = std::min(doc_left, row_left);
        lengths.push_back(piece);
        doc_left -= piece;
        row_left -= piece;
        n += piece;
        if (row_left == 0) {
            row_left = T;
            doc_left = 0; /* the rest of a cut document is dropped, as the loader's chunk mode would start anew */
        }
    }
    return lengths;
}

/* Forward FLOPs over attended pairs only: 4 * HD * NH * sum L(L+1)/2. */
static double attn_forward_flops(const AttnProblem &p)
{
    double pairs = 0.0;
    for (int s = 0; s < p.S; s++) {
        const double L = p.cu_seqlens[s + 1] - p.cu_seqlens[s];
        pairs += L * (L + 1) / 2;
    }
    return 4.0 * p.HD * p.NH * pairs;
}

/* whole_rows: one segment per row of T tokens (plain causal attention, the
   work dense causal SDPA does) instead of packed documents. */
struct AttnBenchShape {
    int T, NH, HD, whole_rows;
};
static const AttnBenchShape attn_bench_shapes[] = {
    {1024, 12, 64, 0}, {2048, 16, 128, 0}, {8192, 32, 128, 0}, {8192, 32, 128, 1}};
#define ATTN_BENCH_SHAPES ((int)(sizeof(attn_bench_shapes) / sizeof(attn_bench_shapes[0])))
#define ATTN_BENCH_TOKENS 32768
#define ATTN_BENCH_LENGTH_SEED 20261125
/* seconds of untimed rounds before each shape's timed ones (time_ms_interleaved): the card then runs
   as it does under sustained load, not as in its first moments after setup. Under its 700 W cap an H200
   went from 1980 to ~1500 MHz within 2 s of load, and the forward at T=8192 still ran 466 TFLOP/s
   over a 2 s warm-up against 413-422 after more load, at no higher reported clock
   (dev/notes/attention.md, 2026-12-03, thirteenth session): 4 s. */
#define ATTN_BENCH_WARM_SECONDS 4.0

/* " %WIDTH.0f" of a card reading, or "-" in its place when it is unknown (0) */
static void print_reading(float value, int width)
{
    if (value > 0.0f)
        printf(" %*.0f", width, value);
    else
        printf(" %*s", width, "-");
}

/* Times our forward (and backward, forward+backward when `backward`) on each
   benchmark shape (or only shape `only_shape`) on each of `paths` (none:
   the path selected now) and prints a table. `group` query heads share each
   kv head (NKV = NH / group; 1: the shapes as listed, multi-head); a shape
   whose heads it does not divide is skipped. The packed lengths come from `length_seed` (default
   ATTN_BENCH_LENGTH_SEED), not from `rng`, so runs and builds compare on the
   same work. When `report` is not NULL, writes per shape
   "shape T NH HD N S", "lengths ...", and per path
   "ours PATH FWD_MS BWD_MS FWDBWD_MS SM_MHZ WATTS" for dev/cuda/bench_attention_peer.py,
   which times the PyTorch peers on the same packed lengths. Each row also
   gives the mean SM clock and power over its timed rounds and the warm-up's
   last second (card_sampler.h; "-": unknown). */
static void attn_benchmark(int backward, int only_shape /* -1: all */, int group, uint64_t length_seed,
                           Rng *rng, FILE *report, std::vector<AttentionPath> paths = {})
{
    if (paths.empty()) paths.push_back(attention_active_path());
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("\nbenchmark on %s: %d tokens per call, length seed %llu, median of 20 rounds (each runs fwd, "
           "bwd and f+b twice, timing the second) after %.0f s of untimed rounds, TFLOP/s over attended pairs, "
           "mean SM clock and power of the timed rounds and the warm-up's last second\n",
           prop.name, ATTN_BENCH_TOKENS, (unsigned long long)length_seed, ATTN_BENCH_WARM_SECONDS);
    printf("%-31s %-5s %6s %9s %9s %9s %9s %9s %9s %6s %5s\n", "shape", "path", "docs", "fwd ms", "fwd TF/s",
           "bwd ms", "bwd TF/s", "f+b ms", "f+b TF/s", "MHz", "W");
    for (int si = 0; si < ATTN_BENCH_SHAPES; si++) {
        if (only_shape >= 0 && si != only_shape) continue;
        const AttnBenchShape &shape = attn_bench_shapes[si];
        Rng length_rng = rng_create(length_seed + si);
        const std::vector<int> lengths = shape.whole_rows
                                             ? std::vector<int>(ATTN_BENCH_TOKENS / shape.T, shape.T)
                                             : attn_benchmark_lengths(ATTN_BENCH_TOKENS, shape.T, &length_rng);
        if (shape.NH % group != 0) {
            printf("T=%d NH=%d: skipped, --group %d does not divide its heads\n", shape.T, shape.NH, group);
            continue;
        }
        AttnProblem p = attn_problem_create(lengths, shape.NH, shape.NH / group, shape.HD, rng, false);
        const double flops = attn_forward_flops(p);
        char label[64], kv_heads[16] = "";
        if (group > 1) snprintf(kv_heads, sizeof(kv_heads), " NKV=%d", p.NKV);
        snprintf(label, sizeof(label), "T=%d NH=%d%s HD=%d%s", shape.T, shape.NH, kv_heads, shape.HD,
                 shape.whole_rows ? " causal" : "");
        if (report) {
            fprintf(report, "shape %d %d %d %d %d\nlengths", shape.T, shape.NH, shape.HD, p.N, p.S);
            for (int s = 0; s < p.S; s++) fprintf(report, " %d", p.cu_seqlens[s + 1] - p.cu_seqlens[s]);
            fprintf(report, "\n");
        }
        for (AttentionPath path : paths) {
            attention_select_path(path);
            std::vector<std::function<void()>> calls = {[&] { attn_run_forward(p); }};
            if (backward) {
                calls.push_back([&] { attn_run_backward(p); });
                calls.push_back([&] { attn_run_forward(p); attn_run_backward(p); });
            }
            CardReading card;
            const std::vector<float> ms = time_ms_interleaved(calls, 20, ATTN_BENCH_WARM_SECONDS, &card);
            const double fwd = ms[0], bwd = backward ? ms[1] : 0.0, both = backward ? ms[2] : 0.0;
            printf("%-31s %-5s %6d %9.3f %9.1f", label, attention_path_name(path), p.S, fwd, flops / fwd * 1e-9);
            if (backward)
                printf(" %9.3f %9.1f %9.3f %9.1f", bwd, 2.5 * flops / bwd * 1e-9, both, 3.5 * flops / both * 1e-9);
            print_reading(card.sm_mhz, 6);
            print_reading(card.watts, 5);
            printf("\n");
            if (report)
                fprintf(report, "ours %s %.5f %.5f %.5f %.0f %.0f\n", attention_path_name(path), fwd, bwd, both,
                        card.sm_mhz, card.watts);
        }
        attn_problem_free(p);
    }
}

/* The value of --path: auto, sm80 or sm90; anything else is a clear error. */
static AttentionPath attn_parse_path(const char *prog, const char *name)
{
    AttentionPath path = ATTENTION_PATH_AUTO;
    if (!attention_path_from_name(name, &path)) die("%s: --path takes auto, sm80 or sm90, not '%s'", prog, name);
    return path;
}

/* The options both attention programs take. */
struct AttnOptions {
    int bench = 1;       /* --no-bench clears it */
    int small = 0;       /* --small: attn_check_small only, no benchmark (for compute-sanitizer) */
    int only_shape = -1; /* --bench-only I: no checks, benchmark shape I only (-1: all) */
    int skip_checks = 0;
    int group = 1;       /* --group G: the benchmark's shapes with NKV = NH / G */
    std::vector<AttentionPath> paths; /* --path P (repeatable); none given: every path the card runs */
};

/* The shared options at argv[*i], after the program's own: --path P (a path
   this card or binary cannot run dies here, saying why), --small,
   --bench-only I, --group G, --no-bench and --seed N (read by attn_seed_from_args,
   skipped here); *i is advanced past a value. Anything else is a clear error. */
static void attn_common_option_or_die(int argc, char **argv, int *i, AttnOptions *o)
{
    const char *arg = argv[*i];
    const bool has_value = *i + 1 < argc;
    if (strcmp(arg, "--path") == 0 && has_value) {
        const AttentionPath path = attn_parse_path(argv[0], argv[++*i]);
        if (path == ATTENTION_PATH_AUTO) die("%s: --path takes sm80 or sm90 here", argv[0]);
        attention_select_path(path);
        o->paths.push_back(path);
    } else if (strcmp(arg, "--small") == 0) {
        o->small = 1;
    } else if (strcmp(arg, "--bench-only") == 0 && has_value) {
        o->only_shape = (int)parse_long_or_die(argv[++*i], "--bench-only");
        if (o->only_shape < -1 || o->only_shape >= ATTN_BENCH_SHAPES)
            die("%s: --bench-only takes 0..%d or -1 (all)", argv[0], ATTN_BENCH_SHAPES - 1);
        o->skip_checks = 1;
    } else if (strcmp(arg, "--group") == 0 && has_value) {
        o->group = (int)parse_long_or_die(argv[++*i], "--group");
        if (o->group < 1) die("%s: --group takes a positive number of query heads per kv head", argv[0]);
    } else if (strcmp(arg, "--no-bench") == 0) {
        o->bench = 0;
    } else if (strcmp(arg, "--seed") == 0 && has_value) {
        ++*i;
    } else {
        die("%s: unknown argument '%s' (see --help)", argv[0], arg);
    }
}

/* After the command line: no --path means every path the card runs. */
static void attn_options_finish(AttnOptions *o)
{
    if (o->paths.empty()) o->paths = attn_available_paths();
}

#endif /* PACKLM_ATTENTION_CHECK_H */
