/*
 * matmul_algos.cu — does cuBLASLt's first choice win under the power cap?
 *
 * The trainer runs every linear layer with the algorithm cuBLASLt's heuristic
 * ranks first (llmc/matmul.cuh). That ranking is made for a card at its top
 * clock; a training step holds an H200 at its 700 W cap, where the clock
 * follows the power a kernel draws, so an algorithm that moves fewer bytes per
 * flop could win there. This program takes each product of the trainer's
 * step at the gpt2:d12 (N = 32 x 1024) and llama:1B (N = 8 x 2048) shapes,
 * forward, dinp and dweight with their epilogues, and for each of the
 * heuristic's first MAX_ALGOS algorithms:
 *   - checks it: outputs NaN-poisoned first (the dweight product, which adds
 *     into its output, starts from random values), then the whole output must
 *     be finite and 256 sampled entries must match a double-precision CPU
 *     reference within BF16_TOL (norm-relative);
 *   - times it under sustained load: each algorithm runs alone for WINDOW_S
 *     seconds of back-to-back calls, the algorithms take turns, ROUNDS rounds
 *     after a warm-up, and the row is the median round's time per call with
 *     the mean SM clock over its windows.
 * The last lines weigh the rows by how often the step runs each product (once
 * per layer, the head once): the step's GEMM time with the first choices and
 * with the fastest algorithm of each product.
 *
 *   dev/cuda/bin/matmul_algos [--no-bench] [--only TEXT]
 *     --no-bench: the checks only; --only: the products whose name has TEXT
 */
#include "bench.h"

#define MAX_ALGOS 6
#define SAMPLES 256
#define WINDOW_S 0.3
#define ROUNDS 3

/* One product: D (m, n) = op(A) op(B) (+ D when accumulate), column-major as matmul_cublaslt takes it. */
struct Product {
    char name[64];
    int m, n, k, transA, transB, accumulate;
    cublasLtEpilogue_t epilogue;
    int per_step; /* how many times one step runs it */
};

/* The three products of one linear layer (N, C) -> (N, OC), as matmul_forward / matmul_backward issue them. */
static void linear_products(std::vector<Product> &out, const char *model, const char *layer, int N, int C, int OC,
                            int bias, int gelu_out, int dgelu_in, int per_step)
{
    const cublasLtEpilogue_t fwd = gelu_out ? (bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                                            : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    const cublasLtEpilogue_t dinp = dgelu_in ? CUBLASLT_EPILOGUE_DGELU : CUBLASLT_EPILOGUE_DEFAULT;
    Product p[3] = {{"", OC, N, C, 1, 0, 0, fwd, per_step},
                    {"", C, N, OC, 0, 0, 0, dinp, per_step},
                    {"", C, OC, N, 0, 1, 1, CUBLASLT_EPILOGUE_DEFAULT, per_step}};
    const char *what[3] = {"fwd", "dinp", "dW"};
    for (int i = 0; i < 3; i++) {
        snprintf(p[i].name, sizeof(p[i].name), "%s %s %s", model, layer, what[i]);
        out.push_back(p[i]);
    }
}

__global__ void gather_kernel(float *out, const floatX *x, const size_t *index, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (float)x[index[i]];
}

/* Row rows[s] of op(A) (m, k) into xs[s, :] and column cols[s] of op(B) (k, n) into ys[s, :] (one block a sample). */
__global__ void gather_operands_kernel(float *xs, float *ys, const floatX *a, const floatX *b, const int *rows,
                                       const int *cols, int m, int n, int k, int transA, int transB)
{
    const size_t s = blockIdx.x, i = rows[s], j = cols[s];
    for (size_t kk = threadIdx.x; kk < (size_t)k; kk += blockDim.x) {
        xs[s * k + kk] = (float)(transA ? a[i * k + kk] : a[kk * m + i]);
        ys[s * k + kk] = (float)(transB ? b[kk * n + j] : b[j * k + kk]);
    }
}

__global__ void count_nonfinite_kernel(unsigned long long *count, const floatX *x, size_t n)
{
    unsigned long long bad = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        bad += !isfinite((float)x[i]);
    if (bad) atomicAdd(count, bad);
}

static unsigned long long count_nonfinite(const floatX *x, size_t n)
{
    unsigned long long *d = device_alloc<unsigned long long>(1), h = 0;
    cudaCheck(cudaMemset(d, 0, sizeof(h)));
    count_nonfinite_kernel<<<1024, 256>>>(d, x, n);
    cudaCheckLaunch();
    cudaCheck(cudaMemcpy(&h, d, sizeof(h), cudaMemcpyDeviceToHost));
    return h;
}

/* The algorithm's configuration as cuBLASLt reports it (for the table: what differs between rows). */
static void describe_algo(char *buf, size_t size, const cublasLtMatmulAlgo_t *algo)
{
    const cublasLtMatmulAlgoConfigAttributes_t attrs[] = {CUBLASLT_ALGO_CONFIG_ID, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                                          CUBLASLT_ALGO_CONFIG_STAGES_ID, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                                          CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID};
    const char *names[] = {"id", "tile", "stages", "splitk", "cluster"};
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < 5; i++) {
        size_t bytes = 0; /* the attribute's width (2 or 4 bytes), asked first */
        uint64_t value = 0;
        if (cublasLtMatmulAlgoConfigGetAttribute(algo, attrs[i], NULL, 0, &bytes) != CUBLAS_STATUS_SUCCESS ||
            bytes > sizeof(value) ||
            cublasLtMatmulAlgoConfigGetAttribute(algo, attrs[i], &value, bytes, &bytes) != CUBLAS_STATUS_SUCCESS)
            continue;
        used += snprintf(buf + used, size - used, "%s%s=%llu", used ? " " : "", names[i], (unsigned long long)value);
        if (used >= size) return;
    }
}

struct Timing {
    float ms, mhz;
};

/* Checks every algorithm of one product, then times them; returns the times (index 0: the heuristic's choice). */
static std::vector<Timing> run_product(const Product &p, int bench, Rng *rng)
{
    const size_t a_size = (size_t)p.m * p.k, b_size = (size_t)p.k * p.n, d_size = (size_t)p.m * p.n;
    const int gelu_aux = p.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || p.epilogue == CUBLASLT_EPILOGUE_GELU_AUX;
    const int dgelu = p.epilogue == CUBLASLT_EPILOGUE_DGELU;
    const int bias = p.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || p.epilogue == CUBLASLT_EPILOGUE_BIAS;
    floatX *a = device_random(a_size, 1.0f, 11), *b = device_random(b_size, 0.05f, 12);
    floatX *d = device_alloc<floatX>(d_size), *d_start = p.accumulate ? device_random(d_size, 1.0f, 13) : NULL;
    floatX *bias_vec = bias ? device_random(p.m, 0.5f, 14) : NULL;
    floatX *aux = gelu_aux || dgelu ? (dgelu ? device_random(d_size, 2.0f, 15) : device_alloc<floatX>(d_size)) : NULL;

    /* the CPU reference at SAMPLES random entries (i, j) of D (and of aux, the pre-GELU values, for
       GELU_AUX), from row i of op(A) and column j of op(B), gathered on the card */
    std::vector<int> rows(SAMPLES), cols(SAMPLES);
    std::vector<size_t> index(SAMPLES);
    for (int s = 0; s < SAMPLES; s++) {
        rows[s] = (int)rng_below(rng, p.m);
        cols[s] = (int)rng_below(rng, p.n);
        index[s] = (size_t)cols[s] * p.m + rows[s];
    }
    size_t *d_index = upload(index);
    float *got = device_alloc<float>(SAMPLES), *xs = device_alloc<float>((size_t)SAMPLES * p.k);
    float *ys = device_alloc<float>((size_t)SAMPLES * p.k);
    gather_operands_kernel<<<SAMPLES, 256>>>(xs, ys, a, b, upload(rows), upload(cols), p.m, p.n, p.k, p.transA,
                                             p.transB);
    cudaCheckLaunch();
    const Floats hx = download(xs, (size_t)SAMPLES * p.k), hy = download(ys, (size_t)SAMPLES * p.k);
    auto sampled = [&](const floatX *x) {
        gather_kernel<<<CEIL_DIV(SAMPLES, 256), 256>>>(got, x, d_index, SAMPLES);
        cudaCheckLaunch();
        return download(got, SAMPLES);
    };
    const Floats start = p.accumulate ? sampled(d_start) : Floats(), pre = dgelu ? sampled(aux) : Floats();
    const Floats hbias = bias ? download(bias_vec, p.m) : Floats();
    Floats want_aux(SAMPLES); /* op(A) op(B) + bias, in double, then rounded */
    for (int s = 0; s < SAMPLES; s++) {
        double acc = 0.0;
        for (size_t kk = 0; kk < (size_t)p.k; kk++) acc += (double)hx[s * p.k + kk] * hy[s * p.k + kk];
        want_aux[s] = (float)(bias ? acc + hbias[rows[s]] : acc);
    }
    Floats want = want_aux; /* then the epilogue, as llmc/cpu_ref.h computes it */
    if (gelu_aux) gelu_forward_cpu(want.data(), want_aux.data(), SAMPLES);
    if (dgelu) {
        std::fill(want.begin(), want.end(), 0.0f);
        gelu_backward_cpu(want.data(), pre.data(), want_aux.data(), SAMPLES);
    }
    for (int s = 0; s < SAMPLES && p.accumulate; s++) want[s] += start[s];

    LtGemm g;
    lt_gemm_create(&g, p.epilogue, bias_vec, aux, p.m, p.n, p.k, p.transA, p.transB);
    cublasLtMatmulHeuristicResult_t algos[MAX_ALGOS];
    const int found = lt_gemm_algos(&g, algos, MAX_ALGOS);
    check(found > 0, p.name, "cuBLASLt offers no algorithm");
    const float beta = p.accumulate ? 1.0f : 0.0f;
    for (int c = 0; c < found; c++) {
        if (p.accumulate) cudaCheck(cudaMemcpy(d, d_start, d_size * sizeof(floatX), cudaMemcpyDeviceToDevice));
        else cudaCheck(cudaMemset(d, 0xff, d_size * sizeof(floatX)));
        if (gelu_aux) cudaCheck(cudaMemset(aux, 0xff, d_size * sizeof(floatX)));
        lt_gemm_run(&g, &algos[c].algo, d, a, b, beta, 0);
        char name[160];
        snprintf(name, sizeof(name), "%s/algo %d/all entries finite", p.name, c);
        const unsigned long long bad = count_nonfinite(d, d_size);
        check(bad == 0, name, "%llu of %zu entries are NaN or inf (not written?)", bad, d_size);
        gather_kernel<<<CEIL_DIV(SAMPLES, 256), 256>>>(got, d, d_index, SAMPLES);
        cudaCheckLaunch();
        snprintf(name, sizeof(name), "%s/algo %d/sampled entries vs CPU", p.name, c);
        check_device_close(name, got, want, BF16_TOL);
        if (gelu_aux) {
            gather_kernel<<<CEIL_DIV(SAMPLES, 256), 256>>>(got, aux, d_index, SAMPLES);
            cudaCheckLaunch();
            snprintf(name, sizeof(name), "%s/algo %d/pre-GELU aux vs CPU", p.name, c);
            check_device_close(name, got, want_aux, BF16_TOL);
        }
    }

    std::vector<Timing> result;
    if (bench && found > 0) {
        const double flops = 2.0 * p.m * p.n * p.k;
        auto run = [&](int c) { lt_gemm_run(&g, &algos[c].algo, d, a, b, beta, 0); };
        const float estimate_ms = time_ms([&] { run(0); }, 5);
        const int calls = std::max(4, (int)(WINDOW_S * 1e3 / estimate_ms));
        /* warm-up: the first choice alone for one second, so the card has settled at its loaded clock */
        for (double spent = 0.0; spent < 1000.0; spent += estimate_ms * calls) {
            for (int i = 0; i < calls; i++) run(0);
            cudaCheck(cudaDeviceSynchronize());
        }
        std::vector<std::vector<float>> ms(found), mhz(found);
        cudaEvent_t start, stop;
        cudaCheck(cudaEventCreate(&start));
        cudaCheck(cudaEventCreate(&stop));
        for (int r = 0; r < ROUNDS; r++) {
            for (int c = 0; c < found; c++) {
                CardSampler sampler;
                sampler.start();
                cudaCheck(cudaEventRecord(start));
                for (int i = 0; i < calls; i++) run(c);
                cudaCheck(cudaEventRecord(stop));
                cudaCheck(cudaEventSynchronize(stop));
                const CardReading reading = sampler.stop();
                float elapsed;
                cudaCheck(cudaEventElapsedTime(&elapsed, start, stop));
                ms[c].push_back(elapsed / calls);
                mhz[c].push_back(reading.sm_mhz);
            }
        }
        cudaCheck(cudaEventDestroy(start));
        cudaCheck(cudaEventDestroy(stop));
        for (int c = 0; c < found; c++) {
            Timing t;
            t.ms = median_ms(ms[c]);
            t.mhz = 0.0f;
            for (float x : mhz[c]) t.mhz += x / mhz[c].size();
            result.push_back(t);
            char config[128], shape[64];
            describe_algo(config, sizeof(config), &algos[c].algo);
            snprintf(shape, sizeof(shape), "%dx%dx%d", p.m, p.n, p.k);
            printf("%-26s %-17s %d %-44s %9.1f %8.1f %6.0f %7.3f\n", p.name, shape, c, config, t.ms * 1e3,
                   flops / (t.ms * 1e-3) / 1e12, t.mhz, result[0].ms / t.ms);
            fflush(stdout);
        }
    }
    lt_gemm_destroy(&g);
    device_free_all();
    return result;
}

int main(int argc, char **argv)
{
    int bench = 1;
    const char *only = "";
    for (int moved = 1; moved;) { /* the options come first */
        moved = 0;
        if (argc > 1 && strcmp(argv[1], "--no-bench") == 0) {
            bench = 0;
            argc--, argv++, moved = 1;
        } else if (argc > 2 && strcmp(argv[1], "--only") == 0) {
            only = argv[2];
            argc -= 2, argv += 2, moved = 1;
        }
    }
    dev_start(argc, argv,
              "cuBLASLt's algorithms for each GEMM of the gpt2:d12 and llama:1B steps: checked, then timed under\n"
              "sustained load (each alone for a window, in turns). Options, before any other argument:\n"
              "  --no-bench     the checks only\n"
              "  --only TEXT    only the products whose name contains TEXT (e.g. llama, \"fc dW\")");
    std::vector<Product> products;
    const int gpt2_N = 32 * 1024, llama_N = 8 * 2048;
    linear_products(products, "gpt2", "qkv", gpt2_N, 768, 2304, 1, 0, 0, 12);
    linear_products(products, "gpt2", "attproj", gpt2_N, 768, 768, 1, 0, 0, 12);
    linear_products(products, "gpt2", "fc", gpt2_N, 768, 3072, 1, 1, 0, 12);
    linear_products(products, "gpt2", "fcproj", gpt2_N, 3072, 768, 1, 0, 1, 12);
    linear_products(products, "gpt2", "lm_head", gpt2_N, 768, 50304, 0, 0, 0, 1);
    linear_products(products, "llama", "qkv", llama_N, 2048, 3072, 0, 0, 0, 16);
    linear_products(products, "llama", "attproj", llama_N, 2048, 2048, 0, 0, 0, 16);
    linear_products(products, "llama", "fc", llama_N, 2048, 16384, 0, 0, 0, 16);
    linear_products(products, "llama", "fcproj", llama_N, 8192, 2048, 0, 0, 0, 16);
    linear_products(products, "llama", "lm_head", llama_N, 2048, 50304, 0, 0, 0, 1);
    if (bench)
        printf("\nproduct (D = op(A) op(B), m x n x k), algorithm (0: heuristic's first), alone for %.1f s per round, "
               "median of %d rounds\n%-26s %-17s %s %-44s %9s %8s %6s %7s\n",
               WINDOW_S, ROUNDS, "product", "m x n x k", "#", "configuration", "us/call", "TFLOP/s", "MHz",
               "speedup");
    Rng rng = rng_create(2026);
    double first_ms[2] = {0, 0}, best_ms[2] = {0, 0};
    for (const Product &p : products) {
        if (!strstr(p.name, only)) continue;
        const std::vector<Timing> t = run_product(p, bench, &rng);
        if (t.empty()) continue;
        float best = t[0].ms;
        for (const Timing &x : t) best = std::min(best, x.ms);
        const int model = strncmp(p.name, "llama", 5) == 0;
        first_ms[model] += p.per_step * t[0].ms;
        best_ms[model] += p.per_step * best;
    }
    for (int model = 0; model < 2; model++) {
        if (first_ms[model] == 0.0) continue; /* not timed */
        printf("%s step, GEMM time: heuristic's first %.2f ms, fastest of each product %.2f ms (%.1f%% less)\n",
               model ? "llama:1B T=2048 B=8" : "gpt2:d12 T=1024 B=32", first_ms[model], best_ms[model],
               100.0 * (1.0 - best_ms[model] / first_ms[model]));
    }
    return dev_finish();
}
