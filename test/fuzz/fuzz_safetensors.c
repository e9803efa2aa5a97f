/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors reader
 * (llmc/safetensors.h) that dev/data/hf_import uses.
 *
 * Input: arbitrary bytes taken as a whole .safetensors file. st_parse must
 * return either a tensor list or a message, never crash or read outside the
 * bytes (AddressSanitizer watches). When it accepts them, every tensor lies
 * inside the data, the tensors tile it, and reading each F32 / BF16 / F16
 * tensor with its own shape succeeds while a wrong shape is refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    StFile f;
    char err[ST_ERR_LEN] = "";
    if (!st_parse(data, size, "fuzz.safetensors", &f, err)) {
        if (err[0] == '\0') abort(); /* a refusal always says why */
        return 0;
    }
    uint64_t covered = 0;
    for (int i = 0; i < f.num_tensors; i++) {
        const StTensor *t = &f.tensors[i];
        if (t->begin < 8 || t->end > size || t->end < t->begin) abort();
        if (t->data != data + t->begin) abort();
        covered += t->end - t->begin;
        if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16) continue;
        const size_t n = (size_t)((t->end - t->begin) / (uint64_t)ST_DTYPE_BYTES[t->dtype]);
        uint16_t *out = (uint16_t *)malloc(n ? n * sizeof(uint16_t) : 1);
        if (!st_tensor_read_bf16(&f, t, t->shape, t->ndim, out, err)) abort();
        int64_t wrong[ST_MAX_DIMS + 1];
        memcpy(wrong, t->shape, sizeof(t->shape));
        wrong[t->ndim] = 1; /* one dimension more: another shape, refused */
        if (st_tensor_read_bf16(&f, t, wrong, t->ndim + 1, out, err)) abort();
        free(out);
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | data[i];
    if (covered != size - 8 - header) abort(); /* the tensors tile the data exactly */
    st_file_free(&f);
    return 0;
}
