/*
 * gelu.cuh — GELU, tanh approximation, over n bf16 elements (n a multiple of 8):
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
 * gelu_backward overwrites dinp = gelu'(inp) * dout; dinp may alias dout.
 * (matmul.cuh fuses both into cuBLASLt epilogues: the forward into the fc
 * matmul, the backward into the fcproj backward's dinp matmul. gelu_forward
 * serves the recompute, -r 1; gelu_backward is the unfused form that
 * dev/cuda/matmul.cu times the backward's epilogue against.)
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

/* x = the GELU input, y = the gradient of its output. */
struct GeluBackwardOp {
    __device__ float operator()(float x, float dy) const
    {
        const float t = tanhf(GELU_SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
        const float du = GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * x * x);
        return dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
};

static void gelu_forward(floatX *out, const floatX *inp, size_t n, cudaStream_t s)
{
    map_elements("gelu_forward", out, inp, NULL, n, GeluForwardOp(), s);
}

static void gelu_backward(floatX *dinp, const floatX *inp, const floatX *dout, size_t n, cudaStream_t s)
{
    map_elements("gelu_backward", dinp, inp, dout, n, GeluBackwardOp(), s);
}

#endif /* PACKLM_GELU_CUH */
