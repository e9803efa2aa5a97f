/*
 * fuzz_jsonl.c — libFuzzer target for the JSONL field reader (llmc/jsonl.h)
 * that dev/data/write_shards uses.
 *
 * Input: arbitrary bytes taken as one line. jsonl_string_field must return
 * either a value or an error message, never both or neither, must not read
 * past the line (AddressSanitizer watches), and a returned value is at most
 * 3 bytes per input byte (the longest expansion: a \uXXXX escape of 6 bytes
 * gives at most 3 bytes of UTF-8, a surrogate pair of 12 gives 4).
 */
#include <stdint.h>
#include <stdlib.h>
#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ByteBuf value = {0};
    const char *err = NULL;
    int ok = jsonl_string_field(data, size, "text", &value, &err);
    if (ok ? err != NULL : err == NULL) abort();
    if (ok && value.len > 3 * size) abort();
    free(value.bytes);
    return 0;
}
