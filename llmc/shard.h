/*
 * shard.h — reading and validating llm.c-format token shards.
 *
 * File layout (little-endian):
 *   header   256 int32: [0] magic, [1] version, [2] token count n
 *            magic 20240520 / version 1: tokens are uint16
 *            magic 20240801 / version 7: tokens are uint32
 *   payload  n tokens (2 or 4 bytes each), nothing after them
 * Every document begins with one document token, so a valid shard's first
 * token is that token and documents are found by scanning for it: GPT-2's
 * end-of-text 50256 (SHARD_EOT, what write_shards and llm.c's GPT-2 scripts
 * write) unless the caller names another (train_gpt --doc-token; e.g.
 * 128000, Llama 3's begin-of-text, for llm.c's Llama 3 shards).
 *
 * A Shard is a read-only memory map of one file. shard_validate() checks a
 * byte buffer and returns a message instead of exiting (fuzzing, tools);
 * shard_open() and shard_check_tokens() die with a message naming the file.
 * shard_find_documents() returns the document starts: doc i is the tokens
 * [starts[i], starts[i+1]), with starts[num_docs] = n.
 */
#ifndef PACKLM_SHARD_H
#define PACKLM_SHARD_H

#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "utils.h"

#define SHARD_HEADER_INTS 256
#define SHARD_HEADER_BYTES (SHARD_HEADER_INTS * 4)
#define SHARD_MAGIC_U16 20240520
#define SHARD_VERSION_U16 1
#define SHARD_MAGIC_U32 20240801
#define SHARD_VERSION_U32 7
#define SHARD_EOT 50256 /* GPT-2's end-of-text: the default document token */
#define SHARD_MESSAGE_BYTES 256

typedef struct {
    char *path;                  /* NULL for a shard viewed from memory */
    const unsigned char *bytes;  /* the whole file */
    size_t size;                 /* bytes in the file */
    const unsigned char *tokens; /* bytes + SHARD_HEADER_BYTES */
    int token_bytes;             /* 2 or 4 */
    int64_t num_tokens;
} Shard;

static inline int32_t shard_header_field(const unsigned char *bytes, int index)
{
    int32_t v;
    memcpy(&v, bytes + 4 * index, sizeof(v));
    return v;
}

/* Token i of a payload of `token_bytes`-wide ids (unaligned-safe). */
static inline uint32_t shard_payload_token(const unsigned char *tokens, int token_bytes, int64_t i)
{
    if (token_bytes == 2) {
        uint16_t v;
        memcpy(&v, tokens + 2 * i, sizeof(v));
        return v;
    }
    uint32_t v;
    memcpy(&v, tokens + 4 * i, sizeof(v));
    return v;
}

static inline uint32_t shard_token(const Shard *s, int64_t i)
{
    return shard_payload_token(s->tokens, s->token_bytes, i);
}

/* Header checks: size, magic, version, token count against the file size.
   On a problem, writes a message into msg and returns 1. On success sets
   *token_bytes and *num_tokens and returns 0. */
static inline int shard_header_problem(const unsigned char *bytes, size_t size, int *token_bytes,
                                       int64_t *num_tokens, char *msg)
{
    if (size == 0) {
        snprintf(msg, SHARD_MESSAGE_BYTES, "empty file (0 bytes; a shard starts with a %d-byte header)",
                 SHARD_HEADER_BYTES);
        return 1;
    }
    if (size < SHARD_HEADER_BYTES) {
        snprintf(msg, SHARD_MESSAGE_BYTES, "truncated header: file has %zu bytes, the header alone is %d",
                 size, SHARD_HEADER_BYTES);
        return 1;
    }
    int32_t magic = shard_header_field(bytes, 0), version = shard_header_field(bytes, 1);
    int32_t count = shard_header_field(bytes, 2);
    int width, want_version;
    if (magic == SHARD_MAGIC_U16) {
        width = 2;
        want_version = SHARD_VERSION_U16;
    } else if (magic == SHARD_MAGIC_U32) {
        width = 4;
        want_version = SHARD_VERSION_U32;
    } else {
        snprintf(msg, SHARD_MESSAGE_BYTES,
                 "bad magic %d (expected %d for uint16 tokens or %d for uint32 tokens): not a token shard",
                 (int)magic, SHARD_MAGIC_U16, SHARD_MAGIC_U32);
        return 1;
    }
    if (version != want_version) {
        snprintf(msg, SHARD_MESSAGE_BYTES, "bad version %d for magic %d (expected version %d)", (int)version,
                 (int)magic, want_version);
        return 1;
    }
    if (count <= 0) {
        snprintf(msg, SHARD_MESSAGE_BYTES, "header token count is %d; a shard needs at least one token",
                 (int)count);
        return 1;
    }
    size_t payload = size - SHARD_HEADER_BYTES, want = (size_t)count * (size_t)width;
    if (payload < want) {
        snprintf(msg, SHARD_MESSAGE_BYTES,
                 "truncated: header says %d tokens (%zu bytes) but only %zu bytes follow the header", (int)count,
                 want, payload);
        return 1;
    }
    if (payload > want) {
        snprintf(msg, SHARD_MESSAGE_BYTES,
                 "header token count mismatch: header says %d tokens (%zu bytes) but %zu bytes follow the header",
                 (int)count, want, payload);
        return 1;
    }
    *token_bytes = width;
    *num_tokens = count;
    return 0;
}

/* Token checks on a payload whose header passed: the first token is the
   document token and every id is below vocab_size. Same contract as above. */
static inline int shard_tokens_problem(const unsigned char *tokens, int token_bytes, int64_t num_tokens,
                                       int vocab_size, int doc_token, char *msg)
{
    uint32_t first = shard_payload_token(tokens, token_bytes, 0);
    if (first != (uint32_t)doc_token) {
        if (doc_token == SHARD_EOT)
            snprintf(msg, SHARD_MESSAGE_BYTES,
                     "first token is %u, not the end-of-text token %d that starts every document (--doc-token "
                     "names another document token)", first, SHARD_EOT);
        else
            snprintf(msg, SHARD_MESSAGE_BYTES, "first token is %u, not the document token %d (--doc-token)", first,
                     doc_token);
        return 1;
    }
    for (int64_t i = 0; i < num_tokens; i++) {
        uint32_t t = shard_payload_token(tokens, token_bytes, i);
        if (t >= (uint32_t)vocab_size) {
            snprintf(msg, SHARD_MESSAGE_BYTES, "token id %u at index %lld is not below the vocabulary size %d", t,
                     (long long)i, vocab_size);
            return 1;
        }
    }
    return 0;
}

/* Validate a whole shard held in memory. NULL if valid, else a message
   (in a static buffer, overwritten by the next call). Never exits. */
static inline const char *shard_validate(const void *bytes, size_t size, int vocab_size, int doc_token)
{
    static char msg[SHARD_MESSAGE_BYTES];
    int token_bytes;
    int64_t num_tokens;
    const unsigned char *b = (const unsigned char *)bytes;
    if (shard_header_problem(b, size, &token_bytes, &num_tokens, msg)) return msg;
    if (shard_tokens_problem(b + SHARD_HEADER_BYTES, token_bytes, num_tokens, vocab_size, doc_token, msg)) return msg;
    return NULL;
}

/* View a buffer that passed shard_validate as a Shard (no file, no copy). */
static inline Shard shard_from_bytes(const void *bytes, size_t size)
{
    Shard s;
    char msg[SHARD_MESSAGE_BYTES];
    memset(&s, 0, sizeof(s));
    s.bytes = (const unsigned char *)bytes;
    s.size = size;
    if (shard_header_problem(s.bytes, size, &s.token_bytes, &s.num_tokens, msg))
        die("shard_from_bytes: invalid shard: %s", msg);
    s.tokens = s.bytes + SHARD_HEADER_BYTES;
    return s;
}

/* Map a shard file read-only and check its header; dies naming the file. */
static inline void shard_open(Shard *s, const char *path)
{
    char msg[SHARD_MESSAGE_BYTES];
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("shard '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) die("shard '%s': cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) die("shard '%s': not a regular file", path);
    memset(s, 0, sizeof(*s));
    s->size = (size_t)st.st_size;
    if (s->size > 0) {
        void *map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) die("shard '%s': mmap of %zu bytes failed: %s", path, s->size, strerror(errno));
        s->bytes = (const unsigned char *)map;
    }
    close(fd);
    if (shard_header_problem(s->bytes, s->size, &s->token_bytes, &s->num_tokens, msg))
        die("shard '%s': %s", path, msg);
    s->tokens = s->bytes + SHARD_HEADER_BYTES;
    s->path = (char *)malloc_or_die(strlen(path) + 1);
    strcpy(s->path, path);
}

/* Full token scan (first token, vocabulary); dies naming the file. */
static inline void shard_check_tokens(const Shard *s, int vocab_size, int doc_token)
{
    char msg[SHARD_MESSAGE_BYTES];
    if (shard_tokens_problem(s->tokens, s->token_bytes, s->num_tokens, vocab_size, doc_token, msg))
        die("shard '%s': %s", s->path ? s->path : "(memory)", msg);
}

static inline void shard_close(Shard *s)
{
    if (s->path) {
        if (s->bytes) munmap((void *)s->bytes, s->size);
        free(s->path);
    }
    memset(s, 0, sizeof(*s));
}

/* Document starts (indices of the document token) plus a final entry n.
   The shard's first token must be the document token (validated). */
static inline int64_t *shard_find_documents(const Shard *s, int doc_token, int *num_docs)
{
    int64_t count = 0;
    for (int64_t i = 0; i < s->num_tokens; i++) count += shard_token(s, i) == (uint32_t)doc_token;
    int64_t *starts = (int64_t *)malloc_or_die((size_t)(count + 1) * sizeof(int64_t));
    int64_t k = 0;
    for (int64_t i = 0; i < s->num_tokens; i++)
        if (shard_token(s, i) == (uint32_t)doc_token) starts[k++] = i;
    starts[count] = s->num_tokens;
    *num_docs = (int)count;
    return starts;
}

/* Sorted paths matching a glob pattern; dies if nothing matches. */
static inline char **shard_glob(const char *pattern, int *count)
{
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) die("no shard files match '%s'", pattern);
    if (rc != 0) die("cannot expand the shard pattern '%s' (glob error %d)", pattern, rc);
    char **paths = (char **)malloc_or_die(g.gl_pathc * sizeof(char *));
    for (size_t i = 0; i < g.gl_pathc; i++) {
        paths[i] = (char *)malloc_or_die(strlen(g.gl_pathv[i]) + 1);
        strcpy(paths[i], g.gl_pathv[i]);
    }
    *count = (int)g.gl_pathc;
    globfree(&g);
    return paths;
}

static inline void shard_free_paths(char **paths, int count)
{
    for (int i = 0; i < count; i++) free(paths[i]);
    free(paths);
}

#endif /* PACKLM_SHARD_H */
