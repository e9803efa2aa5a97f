/*
 * shard_file.h — writes a token shard file in llm.c's format for the tests
 * that read shards back through the dataloader (test_dataloader.c,
 * test_zero.c): a header of SHARD_HEADER_INTS int32 ([0] magic, [1] version,
 * [2] token count n; see llmc/shard.h), then the n tokens as uint16
 * (token_bytes 2) or uint32 (token_bytes 4).
 */
#ifndef PACKLM_SHARD_FILE_H
#define PACKLM_SHARD_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "shard.h"
#include "utils.h"

static inline void write_shard_file(const char *path, const uint32_t *tokens, int64_t n, int token_bytes)
{
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = token_bytes == 2 ? SHARD_MAGIC_U16 : SHARD_MAGIC_U32;
    header[1] = token_bytes == 2 ? SHARD_VERSION_U16 : SHARD_VERSION_U32;
    header[2] = (int32_t)n;
    FILE *f = fopen_or_die(path, "wb");
    fwrite_or_die(header, sizeof(header), 1, f, path);
    for (int64_t i = 0; i < n; i++) {
        uint16_t t16 = (uint16_t)tokens[i];
        if (token_bytes == 2) fwrite_or_die(&t16, 2, 1, f, path);
        else fwrite_or_die(&tokens[i], 4, 1, f, path);
    }
    fclose_or_die(f, path);
}

#endif /* PACKLM_SHARD_FILE_H */
