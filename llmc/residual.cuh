/*
 * residual.cuh — the residual add out = a + b over n bf16 elements (n a
 * multiple of 8; out may alias a or b).
 */
#ifndef PACKLM_RESIDUAL_CUH
#define PACKLM_RESIDUAL_CUH

#include "elementwise.cuh"

struct AddOp {
    __device__ float operator()(float a, float b) const { return a + b; }
};

static void residual_forward(floatX *out, const floatX *a, const floatX *b, size_t n, cudaStream_t s)
{
    map_elements("residual_forward", out, a, b, n, AddOp(), s);
}

#endif /* PACKLM_RESIDUAL_CUH */
