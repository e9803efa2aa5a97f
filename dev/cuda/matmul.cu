/*
 * matmul.cu — llmc/matmul.cuh (cuBLASLt): checks against the CPU reference,
 * then forward/backward timings at the GPT-2 124M and Llama-1B layer shapes,
 * including the fused bias+GELU epilogue next to the unfused pair
 * (matmul with bias, then gelu_forward) to show whether the fusion pays,
 * each biased layer's weight-gradient GEMM with and without BGRADB, and
 * gpt2's MLP backward from the fcproj output's gradient to fch's gradient and
 * the fc bias gradient in its three forms (fcproj_gelu_backward below; the
 * trainer's is the DGELU epilogue + column sums).
 */
#include "bench.h"

static void bench_matmul(const char *name, int N, int C, int OC, int with_bias, int with_gelu)
{
    char shape[64];
    snprintf(shape, sizeof(shape), "N=%d C=%d OC=%d", N, C, OC);
    floatX *inp = device_random((size_t)N * C, 1.0f, 1), *w = device_random((size_t)OC * C, 0.05f, 2);
    floatX *bias = with_bias ? device_random(OC, 0.1f, 3) : NULL, *out = device_alloc<floatX>((size_t)N * OC);
    floatX *pre = with_gelu ? device_alloc<floatX>((size_t)N * OC) : NULL;
    floatX *dout = device_random((size_t)N * OC, 1.0f, 4), *dinp = device_alloc<floatX>((size_t)N * C);
    floatX *dw = device_random((size_t)OC * C, 0.0f, 5), *db = with_bias ? device_random(OC, 0.0f, 6) : NULL;
    float *scratch = device_alloc<float>(matmul_dbias_scratch_bytes(OC) / sizeof(float));
    const double flops = 2.0 * N * C * OC;
    char label[64];
    snprintf(label, sizeof(label), "%s fwd%s", name, with_gelu ? " bias+gelu fused" : with_bias ? " +bias" : "");
    bench_row(label, shape, 2.0 * ((double)N * C + (double)OC * C + (double)N * OC), flops,
              [&] { matmul_forward(out, inp, w, bias, N, C, OC, pre, 0); });
    if (with_gelu) {
        snprintf(label, sizeof(label), "%s fwd bias, then gelu", name);
        bench_row(label, shape, 2.0 * ((double)N * C + (double)OC * C + 3.0 * N * OC), flops, [&] {
            matmul_forward(pre, inp, w, bias, N, C, OC, NULL, 0);
            gelu_forward(out, pre, (size_t)N * OC, 0);
        });
    }
    snprintf(label, sizeof(label), "%s bwd%s", name, with_bias ? " +dbias" : "");
    bench_row(label, shape, 2.0 * (3.0 * N * OC + 2.0 * N * C + 3.0 * OC * C), 2.0 * flops,
              [&] { matmul_backward(dinp, dw, db, dout, inp, w, scratch, N, C, OC, NULL, 0); });
    if (with_bias && !with_gelu) {
        /* not used by matmul_backward yet: the bias gradient inside the weight-gradient GEMM (BGRADB;
           the GEMM's op(B) = dout is transposed, as BGRADB requires) against the GEMM alone; worth it
           when the difference is below the column reduction's time (dev/profile_step.sh) */
        const double bytes = 2.0 * ((double)N * C + (double)N * OC + 2.0 * OC * C);
        snprintf(label, sizeof(label), "%s dW gemm", name);
        bench_row(label, shape, bytes, flops,
                  [&] { matmul_cublaslt(dw, inp, dout, CUBLASLT_EPILOGUE_DEFAULT, NULL, NULL, C, OC, N, 0, 1, 1.0f, 0); });
        snprintf(label, sizeof(label), "%s dW gemm +BGRADB", name);
        bench_row(label, shape, bytes, flops, [&] {
            matmul_cublaslt(dw, inp, dout, CUBLASLT_EPILOGUE_BGRADB, scratch, NULL, C, OC, N, 0, 1, 1.0f, 0);
        });
    }
    device_free_all();
}

/*
 * gpt2's MLP backward from dout (N, OC), the fcproj output's gradient, to dpre
 * (N, C), the gradient of the fc output fch (pre-GELU), with fcproj's weight and
 * bias gradients and the fc bias gradient (column sums of dpre), three ways:
 *   unfused      plain backward, GELU backward kernel, fc bias column sums
 *   DGELU        GELU backward in the dinp GEMM's epilogue, fc bias column
 *                sums (the trainer's: matmul_backward with inp_pre_gelu)
 *   DGELU_BGRAD  both in the epilogue (bf16 bias gradient, then added)
 * and the parts that differ between them.
 */
static void bench_fcproj_gelu_backward(int N, int C, int OC)
{
    char shape[64];
    snprintf(shape, sizeof(shape), "N=%d C=%d OC=%d", N, C, OC);
    floatX *pre = device_random((size_t)N * C, 2.0f, 7), *inp = device_alloc<floatX>((size_t)N * C);
    floatX *w = device_random((size_t)OC * C, 0.05f, 2), *dout = device_random((size_t)N * OC, 1.0f, 4);
    floatX *dpre = device_alloc<floatX>((size_t)N * C), *dw = device_random((size_t)OC * C, 0.0f, 5);
    floatX *db = device_random(OC, 0.0f, 6), *dpre_bias = device_random(C, 0.0f, 8);
    floatX *bgrad = device_alloc<floatX>(C);
    float *scratch = device_alloc<float>(matmul_dbias_scratch_bytes(C) / sizeof(float));
    gelu_forward(inp, pre, (size_t)N * C, 0);
    const double nc = (double)N * C, flops = 2.0 * N * C * OC;
    const double gemm_bytes = 2.0 * (nc + (double)N * OC + OC * C), bwd_bytes = 2.0 * (3.0 * N * OC + 2.0 * nc + 3.0 * OC * C);
    /* the dinp GEMM with one of the epilogues; fcproj's own weight and bias gradients (the same in every form) */
    auto dinp_gemm = [&](cublasLtEpilogue_t epilogue) {
        const int dgelu = epilogue != CUBLASLT_EPILOGUE_DEFAULT, bgrad_out = epilogue == CUBLASLT_EPILOGUE_DGELU_BGRAD;
        matmul_cublaslt(dpre, w, dout, epilogue, bgrad_out ? bgrad : NULL, dgelu ? pre : NULL, C, N, OC, 0, 0, 0.0f, 0);
    };
    auto fcproj_dw_db = [&] {
        matmul_dbias(db, dout, scratch, N, OC, 0);
        matmul_cublaslt(dw, inp, dout, CUBLASLT_EPILOGUE_DEFAULT, NULL, NULL, C, OC, N, 0, 1, 1.0f, 0);
    };
    bench_row("fcproj dinp gemm", shape, gemm_bytes, flops, [&] { dinp_gemm(CUBLASLT_EPILOGUE_DEFAULT); });
    bench_row("fcproj dinp gemm +DGELU", shape, gemm_bytes + 2.0 * nc, flops, [&] { dinp_gemm(CUBLASLT_EPILOGUE_DGELU); });
    bench_row("fcproj dinp gemm +DGELU_BGRAD", shape, gemm_bytes + 2.0 * nc, flops,
              [&] { dinp_gemm(CUBLASLT_EPILOGUE_DGELU_BGRAD); });
    bench_row("gelu backward kernel", shape, 3.0 * 2.0 * nc, 0, [&] { gelu_backward(dpre, pre, dpre, (size_t)N * C, 0); });
    bench_row("fc dbias column sums", shape, 2.0 * nc, 0, [&] { matmul_dbias(dpre_bias, dpre, scratch, N, C, 0); });
    bench_row("fcproj bwd, gelu bwd, fc dbias", shape, bwd_bytes + 4.0 * 2.0 * nc, 2.0 * flops, [&] {
        matmul_backward(dpre, dw, db, dout, inp, w, scratch, N, C, OC, NULL, 0);
        gelu_backward(dpre, pre, dpre, (size_t)N * C, 0);
        matmul_dbias(dpre_bias, dpre, scratch, N, C, 0);
    });
    bench_row("fcproj bwd +DGELU, fc dbias", shape, bwd_bytes + 2.0 * 2.0 * nc, 2.0 * flops, [&] {
        matmul_backward(dpre, dw, db, dout, inp, w, scratch, N, C, OC, pre, 0);
        matmul_dbias(dpre_bias, dpre, scratch, N, C, 0);
    });
    bench_row("fcproj bwd +DGELU_BGRAD", shape, bwd_bytes + 2.0 * nc, 2.0 * flops, [&] {
        fcproj_dw_db();
        dinp_gemm(CUBLASLT_EPILOGUE_DGELU_BGRAD);
        map_elements("fc dbias add", dpre_bias, dpre_bias, bgrad, C, AddOp(), 0);
    });
    device_free_all();
}

int main(int argc, char **argv)
{
    dev_start(argc, argv, "cuBLASLt matmul forward (bias, GELU epilogues) and backward; gpt2's GELU backward with and without cuBLASLt epilogues.");
    check_matmul(256, 256, 768, 1, 0, 1);
    check_matmul(200, 128, 512, 1, 1, 2);
    check_matmul(512, 768, 2304, 1, 1, 3);
    check_matmul(64, 96, 40, 0, 0, 4);
    check_matmul_dgelu(512, 3072, 768, 5);
    print_bench_header("matmul (GPT-2 124M: N=B*T=32*1024; Llama-1B: N=8*2048)");
    const int N = 32 * 1024, NL = 8 * 2048;
    bench_matmul("gpt2 qkv", N, 768, 2304, 1, 0);
    bench_matmul("gpt2 attproj", N, 768, 768, 1, 0);
    bench_matmul("gpt2 fc", N, 768, 3072, 1, 1);
    bench_matmul("gpt2 fcproj", N, 3072, 768, 1, 0);
    bench_fcproj_gelu_backward(N, 3072, 768);
    bench_matmul("gpt2 lm_head", N, 768, 50304, 0, 0);
    bench_matmul("llama qkv", NL, 2048, 3072, 0, 0);
    bench_matmul("llama fc (gate|up)", NL, 2048, 16384, 0, 0);
    bench_matmul("llama fcproj", NL, 8192, 2048, 0, 0);
    bench_matmul("llama lm_head", NL, 2048, 50304, 0, 0);
    return dev_finish();
}
