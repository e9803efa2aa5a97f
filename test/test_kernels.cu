/*
 * test_kernels.cu — every GPU kernel (llmc/*.cuh, except attention) against
 * the fp32 CPU reference, forward and backward, at small and odd shapes
 * (make test-gpu). The checks themselves are in kernel_checks.cuh.
 */
#include "kernel_checks.cuh"

int main(void)
{
    cuda_common_init();
    printf("device: %s\n", device_info.name);
    check_matmul(256, 256, 768, 1, 0, 1);
    check_matmul(200, 128, 512, 1, 1, 2);
    check_matmul(64, 96, 40, 0, 0, 3);
    check_matmul(128, 64, 128, 0, 1, 4);
    check_matmul_dgelu(77, 128, 64, 21);
    check_matmul_dgelu(256, 384, 96, 22);
    check_matmul_dgelu(64, 3072, 40, 23);
    check_norm(1, 300, 768, 5);
    check_norm(1, 17, 2048, 6);
    check_norm(0, 300, 768, 7);
    check_norm(0, 64, 4104, 8);
    check_rope(100, 4, 2, 64, rope_params_plain(500000.0f), 9);
    check_rope(33, 2, 2, 128, rope_params_plain(10000.0f), 10);
    RopeParams llama3 = rope_params_plain(500000.0f); /* Llama 3.1's scaling */
    llama3.scaling = RopeScaling{8.0f, 1.0f, 4.0f, 8192};
    check_rope(100, 4, 2, 128, llama3, 11);
    check_gelu(10000, 11);
    check_swiglu(77, 344, 12);
    check_residual(4096 + 8, 13);
    check_encoder(1000, 256, 512, 64, 1, 14);
    check_encoder(300, 264, 1024, 1, 0, 15);
    check_classifier(50, 1000, 1024, 16);
    check_classifier(12, 50257, 50304, 17);
    check_adamw(100003, 18);
    check_stochastic_rounding();
    check_global_norm(1000003, 19);
    check_global_norm(5, 20);
    cuda_common_destroy();
    return test_summary();
}
