/*
 * matmul.cuh — the linear layers through cuBLASLt: bf16 in and out, fp32
 * accumulation; bias and GELU fused into the forward's epilogue, the GELU
 * backward into the backward's.
 *
 *   inp (N, C), weight (OC, C), bias (OC) or NULL  ->  out (N, OC) = inp @ W^T + b
 *   pre_gelu (N, OC) or NULL: when given, pre_gelu = inp @ W^T + b and out = gelu(pre_gelu)
 * Backward (dout (N, OC)):
 *   dinp (N, C) = dout @ W                  overwritten
 *   dweight (OC, C) += dout^T @ inp         accumulated by cuBLASLt with beta = 1
 *   dbias (OC) += column sums of dout       deterministic reduction (column_reduce.cuh);
 *                                           scratch: matmul_dbias_scratch_bytes(OC)
 *   inp_pre_gelu (N, C) or NULL: when given, inp = gelu(inp_pre_gelu) (the
 *   previous layer's forward with pre_gelu: gpt2's fc before fcproj) and dinp
 *   is the gradient of inp_pre_gelu instead, (dout @ W) * gelu'(inp_pre_gelu),
 *   applied by the dinp matmul's epilogue (cuBLASLt's DGELU, the tanh form, on
 *   the fp32 product). The previous layer's bias gradient is then the column
 *   sums of this dinp: its own matmul_backward's dbias. gpt2's fcproj backward
 *   with the fc bias gradient on an H200 (dev/cuda/matmul.cu, per layer):
 *   DGELU + column sums 595 us, gelu.cuh's GELU backward kernel + column sums
 *   668 us, cuBLASLt's DGELU_BGRAD (the sums in the epilogue too) 1145 us.
 * Row-major (rows, cols) is column-major (cols, rows), so every product is
 * expressed to cuBLASLt on the transposed, column-major views.
 * Needs cuda_common_init() (handle + workspace). Widths C, OC multiples of 8.
 */
#ifndef PACKLM_MATMUL_CUH
#define PACKLM_MATMUL_CUH

#include "column_reduce.cuh"
#include "cuda_common.h"

static inline size_t matmul_dbias_scratch_bytes(int OC) { return column_reduce_scratch_bytes(OC, 1); }

/*
 * One product's cuBLASLt description: column-major D (m, n) = op(A) (m, k) @
 * op(B) (k, n) + beta * D, then `epilogue` with its vectors: `bias` (m) read
 * by the BIAS forms, written by the BGRAD forms (overwritten, bf16: D's type);
 * `aux` (m, n; ld m), the GELU input, written by GELU_AUX, read by DGELU.
 * A is stored (k, m) when transA else (m, k); B is stored (n, k) when transB
 * else (k, n). cuBLASLt's heuristic ranks the algorithms that can run it
 * (lt_gemm_algos); the trainer runs the first (matmul_cublaslt), and
 * dev/cuda/matmul_algos.cu times the others next to it.
 */
typedef struct {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;
} LtGemm;

static void lt_gemm_create(LtGemm *g, cublasLtEpilogue_t epilogue, const void *bias, const void *aux, int m, int n,
                           int k, int transA, int transB)
{
    cublasCheck(cublasLtMatmulDescCreate(&g->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
    cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
    cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    if (bias)
        cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (aux) {
        const int64_t ld_aux = m;
        cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
        cublasCheck(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld_aux, sizeof(ld_aux)));
    }
    cublasCheck(cublasLtMatrixLayoutCreate(&g->a, CUDA_R_16BF, transA ? k : m, transA ? m : k, transA ? k : m));
    cublasCheck(cublasLtMatrixLayoutCreate(&g->b, CUDA_R_16BF, transB ? n : k, transB ? k : n, transB ? n : k));
    cublasCheck(cublasLtMatrixLayoutCreate(&g->d, CUDA_R_16BF, m, n, m));
}

/* Up to max_results algorithms for the product, best first by cuBLASLt's heuristic, within the
   workspace; returns how many. */
static int lt_gemm_algos(const LtGemm *g, cublasLtMatmulHeuristicResult_t *results, int max_results)
{
    cublasLtMatmulPreference_t preference;
    cublasCheck(cublasLtMatmulPreferenceCreate(&preference));
    const size_t workspace_bytes = CUBLASLT_WORKSPACE_BYTES;
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &workspace_bytes, sizeof(workspace_bytes)));
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(cublaslt_handle, g->desc, g->a, g->b, g->d, g->d, preference,
                                               max_results, results, &found));
    cublasCheck(cublasLtMatmulPreferenceDestroy(preference));
    return found;
}

static void lt_gemm_run(const LtGemm *g, const cublasLtMatmulAlgo_t *algo, floatX *d, const floatX *a, const floatX *b,
                        float beta, cudaStream_t s)
{
    const float alpha = 1.0f;
    cublasCheck(cublasLtMatmul(cublaslt_handle, g->desc, &alpha, a, g->a, b, g->b, &beta, d, g->d, d, g->d, algo,
                               cublaslt_workspace, CUBLASLT_WORKSPACE_BYTES, s));
}

static void lt_gemm_destroy(LtGemm *g)
{
    cublasCheck(cublasLtMatrixLayoutDestroy(g->a));
    cublasCheck(cublasLtMatrixLayoutDestroy(g->b));
    cublasCheck(cublasLtMatrixLayoutDestroy(g->d));
    cublasCheck(cublasLtMatmulDescDestroy(g->desc));
}

/* The product above with the heuristic's first algorithm. */
static void matmul_cublaslt(floatX *d, const floatX *a, const floatX *b, cublasLtEpilogue_t epilogue, const void *bias,
                            const void *aux, int m, int n, int k, int transA, int transB, float beta, cudaStream_t s)
{
    LtGemm g;
    lt_gemm_create(&g, epilogue, bias, aux, m, n, k, transA, transB);
    cublasLtMatmulHeuristicResult_t best;
    if (lt_gemm_algos(&g, &best, 1) == 0) {
        fprintf(stderr, "error: cuBLASLt has no algorithm for m=%d n=%d k=%d transA=%d transB=%d epilogue=%d\n", m, n,
                k, transA, transB, (int)epilogue);
        exit(1);
    }
    lt_gemm_run(&g, &best.algo, d, a, b, beta, s);
    lt_gemm_destroy(&g);
}

static void matmul_forward(floatX *out, const floatX *inp, const floatX *weight, const floatX *bias, int N, int C,
                           int OC, floatX *pre_gelu, cudaStream_t s)
{
    cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    if (pre_gelu) epilogue = bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    /* out^T (OC, N) = W (OC, C) @ inp^T (C, N); W is stored as (C, OC) column-major */
    matmul_cublaslt(out, weight, inp, epilogue, bias, pre_gelu, OC, N, C, 1, 0, 0.0f, s);
}

/* Column sums of dout for the bias gradient. */
struct BiasGradTerm {
    const floatX *dout;
    int OC;
    __device__ void operator()(int row, int col, float (&acc)[1][8]) const
    {
        const BF16x8 g = load128(dout + (size_t)row * OC + col);
        for (int i = 0; i < 8; i++) acc[0][i] += (float)g[i];
    }
};

/* dbias (OC) += column sums of dout (N, OC); scratch: matmul_dbias_scratch_bytes(OC) */
static void matmul_dbias(floatX *dbias, const floatX *dout, float *scratch, int N, int OC, cudaStream_t s)
{
    ColumnTargets<1> targets = {{dbias}};
    const BiasGradTerm term = {dout, OC};
    column_reduce_add<1>(targets, scratch, term, N, OC, s);
}

static void matmul_backward(floatX *dinp, floatX *dweight, floatX *dbias, const floatX *dout, const floatX *inp,
                            const floatX *weight, float *scratch, int N, int C, int OC, const floatX *inp_pre_gelu,
                            cudaStream_t s)
{
    if (dbias) matmul_dbias(dbias, dout, scratch, N, OC, s);
    /* dinp^T (C, N) = W^T (C, OC) @ dout^T (OC, N), times gelu'(inp_pre_gelu) when given */
    const cublasLtEpilogue_t epilogue = inp_pre_gelu ? CUBLASLT_EPILOGUE_DGELU : CUBLASLT_EPILOGUE_DEFAULT;
    matmul_cublaslt(dinp, weight, dout, epilogue, NULL, inp_pre_gelu, C, N, OC, 0, 0, 0.0f, s);
    /* dW^T (C, OC) += inp^T (C, N) @ dout (N, OC) */
    matmul_cublaslt(dweight, inp, dout, CUBLASLT_EPILOGUE_DEFAULT, NULL, NULL, C, OC, N, 0, 1, 1.0f, s);
}

#endif /* PACKLM_MATMUL_CUH */
