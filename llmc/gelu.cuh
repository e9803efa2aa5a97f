/*
 * gelu.cuh — GELU, tanh approximation, over n bf16 elements (n a multiple of 8):
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 * matmul.cuh fuses this forward into the epilogue of the matmul that makes x,
 * and the backward, gelu'(x) * dout, into the epilogue of the backward matmul
 * of the layer that reads gelu(x); this kernel serves the recompute, -r 1.
 */
#ifndef PACKLM_GELU_CUH
#define PACKLM_GELU_CUH

#include "elementwise.cuh"

#define GELU_SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_CUBIC 0.044715f

struct GeluForwardOp {
    __device__ float operator()(float x, float) const
    {
        const float t = tanhf(GELU_SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
        return 0.5f * x * (1.0f + t);
    }
};

static void gelu_forward(floatX *out, const floatX *inp, size_t n, cudaStream_t s)
{
    map_elements("gelu_forward", out, inp, NULL, n, GeluForwardOp(), s);
}

#endif /* PACKLM_GELU_CUH */
