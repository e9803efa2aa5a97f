/*
 * tokenizer.h — GPT-2 byte-level BPE: text bytes -> token ids and back,
 * giving exactly the ids of tiktoken's "gpt2" encoding.
 *
 * Vocabulary file (data/gpt2_tokenizer.bin, llm.c's format, written by
 * dev/data/gpt2_vocab.py): 256 uint32 header [0] 20240328, [1] 2,
 * [2] vocab size V, [3] end-of-text id; then V records "uint8 length L,
 * L bytes". Token id = merge rank: of two mergeable pieces, the one whose
 * merged token has the smaller id is merged first.
 *
 * Encoding (tokenizer_encode, any bytes, never fails):
 *   1. pretokenize.h cuts the text into pieces;
 *   2. a piece that is itself a token becomes that token (tiktoken's shortcut);
 *   3. any other piece starts as one token per byte, and the adjacent pair
 *      whose concatenation is the lowest-id token is merged, leftmost first
 *      on ties, until no adjacent pair spells a token. A pair map
 *      (left id, right id) -> merged id and a min-heap of candidate merges
 *      make this O(L log L) for a piece of L bytes.
 * The end-of-text token is never produced from text: "<|endoftext|>" in the
 * input is encoded as ordinary characters (tiktoken's encode_ordinary).
 *
 *   tokenizer_init(&t, path)       load + check the file; dies naming it
 *   tokenizer_encode(&t, s, n, &l) append the ids of bytes s[0..n) to list l
 *   tokenizer_decode(&t, ids, n, &len)  malloc'd bytes of n ids
 *   tokenizer_token_bytes(&t, id, &len) the bytes of one token, NULL if no such id
 */
#ifndef PACKLM_TOKENIZER_H
#define PACKLM_TOKENIZER_H

#include <stdint.h>
#include "pretokenize.h"
#include "utils.h"

#define TOKENIZER_MAGIC 20240328
#define TOKENIZER_VERSION 2
#define TOKENIZER_HEADER_INTS 256
#define TOKENIZER_MAX_VOCAB (1 << 24) /* ids fit the heap key's 24 rank bits */
#define TOKENIZER_POS_BITS 40         /* heap key = rank << 40 | byte position */

typedef struct {
    int vocab_size;
    int eot;
    unsigned char *bytes;  /* every token's bytes, concatenated */
    uint32_t *offset;      /* (V + 1): token i is bytes[offset[i] .. offset[i+1]) */
    int byte_token[256];   /* the single-byte token of each byte value */
    int *string_slots;     /* open addressing, token bytes -> id, -1 = empty */
    size_t string_mask;
    uint64_t *pair_keys;   /* open addressing, left << 32 | right, UINT64_MAX = empty */
    int *pair_ids;         /* the token spelled left + right */
    size_t pair_mask;
} Tokenizer;

/* A growable list of token ids. Start from {0} (empty); free with token_list_free. */
typedef struct {
    int *ids;
    size_t len, cap;
} TokenList;

static inline void token_list_push(TokenList *l, int id)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        int *grown = (int *)realloc(l->ids, l->cap * sizeof(int));
        if (!grown) die("out of host memory growing a token list to %zu ids", l->cap);
        l->ids = grown;
    }
    l->ids[l->len++] = id;
}

static inline void token_list_free(TokenList *l)
{
    free(l->ids);
    l->ids = NULL;
    l->len = l->cap = 0;
}

/* ------------------------------------------------------------ hash maps */

static inline uint64_t tokenizer_hash_bytes(const unsigned char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static inline uint64_t tokenizer_hash_pair(uint64_t key)
{
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 29);
}

static inline size_t tokenizer_table_size(size_t entries)
{
    size_t size = 1024;
    while (size < 2 * entries) size *= 2;
    return size;
}

static inline size_t tokenizer_token_length(const Tokenizer *t, int id) { return t->offset[id + 1] - t->offset[id]; }

/* 1 if token id is spelled exactly s[0..n). */
static inline int tokenizer_spells(const Tokenizer *t, int id, const unsigned char *s, size_t n)
{
    return tokenizer_token_length(t, id) == n && memcmp(t->bytes + t->offset[id], s, n) == 0;
}

/* The pair map's key of the adjacent tokens (left, right). */
static inline uint64_t tokenizer_pair_key(int left, int right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* Id of the mergeable token spelled s[0..n), or -1. */
static inline int tokenizer_lookup_string(const Tokenizer *t, const unsigned char *s, size_t n)
{
    for (size_t i = tokenizer_hash_bytes(s, n) & t->string_mask;; i = (i + 1) & t->string_mask) {
        int id = t->string_slots[i];
        if (id < 0) return -1;
        if (tokenizer_spells(t, id, s, n)) return id;
    }
}

/* Id of the token spelled token `left` + token `right`, or -1. */
static inline int tokenizer_lookup_pair(const Tokenizer *t, int left, int right)
{
    const uint64_t key = tokenizer_pair_key(left, right);
    for (size_t i = tokenizer_hash_pair(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        if (t->pair_keys[i] == key) return t->pair_ids[i];
        if (t->pair_keys[i] == UINT64_MAX) return -1;
    }
}

/* Fill both maps; dies on a duplicate token. */
static inline void tokenizer_build_maps(Tokenizer *t, const char *path)
{
    size_t string_size = tokenizer_table_size((size_t)t->vocab_size), pair_bound = 0;
    t->string_mask = string_size - 1;
    t->string_slots = (int *)malloc_or_die(string_size * sizeof(int));
    memset(t->string_slots, 0xFF, string_size * sizeof(int));
    for (int id = 0; id < t->vocab_size; id++) {
        if (id == t->eot) continue;
        const unsigned char *s = t->bytes + t->offset[id];
        size_t n = tokenizer_token_length(t, id), i = tokenizer_hash_bytes(s, n) & t->string_mask;
        for (; t->string_slots[i] >= 0; i = (i + 1) & t->string_mask) {
            int other = t->string_slots[i];
            if (tokenizer_spells(t, other, s, n))
                die("tokenizer file '%s': tokens %d and %d have the same bytes", path, other, id);
        }
        t->string_slots[i] = id;
        pair_bound += n - 1;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char byte = (unsigned char)b;
        t->byte_token[b] = tokenizer_lookup_string(t, &byte, 1);
        if (t->byte_token[b] < 0) die("tokenizer file '%s': byte 0x%02X has no single-byte token", path, b);
    }
    /* every way of spelling a token as two tokens is a merge producing it */
    size_t pair_size = tokenizer_table_size(pair_bound);
    t->pair_mask = pair_size - 1;
    t->pair_keys = (uint64_t *)malloc_or_die(pair_size * sizeof(uint64_t));
    t->pair_ids = (int *)malloc_or_die(pair_size * sizeof(int));
    memset(t->pair_keys, 0xFF, pair_size * sizeof(uint64_t));
    for (int id = 0; id < t->vocab_size; id++) {
        if (id == t->eot) continue;
        const unsigned char *s = t->bytes + t->offset[id];
        size_t n = tokenizer_token_length(t, id);
        for (size_t split = 1; split < n; split++) {
            int left = tokenizer_lookup_string(t, s, split), right = tokenizer_lookup_string(t, s + split, n - split);
            if (left < 0 || right < 0) continue;
            const uint64_t key = tokenizer_pair_key(left, right);
            size_t i = tokenizer_hash_pair(key) & t->pair_mask;
            while (t->pair_keys[i] != UINT64_MAX) i = (i + 1) & t->pair_mask;
            t->pair_keys[i] = key;
            t->pair_ids[i] = id;
        }
    }
}

/* ------------------------------------------------------------ loading */

static inline void tokenizer_init(Tokenizer *t, const char *path)
{
    memset(t, 0, sizeof(*t));
    size_t size, header_bytes = TOKENIZER_HEADER_INTS * sizeof(uint32_t);
    unsigned char *file = read_file_or_die(path, &size);
    if (size < header_bytes)
        die("tokenizer file '%s': %zu bytes, shorter than its %zu-byte header", path, size, header_bytes);

    uint32_t header[TOKENIZER_HEADER_INTS];
    memcpy(header, file, header_bytes);
    if (header[0] != TOKENIZER_MAGIC)
        die("tokenizer file '%s': bad magic %u (expected %d): not a tokenizer file", path, header[0], TOKENIZER_MAGIC);
    if (header[1] != TOKENIZER_VERSION)
        die("tokenizer file '%s': version %u, expected %d (which stores the end-of-text id)", path, header[1],
            TOKENIZER_VERSION);
    if (header[2] <= 256 || header[2] >= TOKENIZER_MAX_VOCAB)
        die("tokenizer file '%s': vocabulary size %u outside 257..%d", path, header[2], TOKENIZER_MAX_VOCAB - 1);
    if (header[3] >= header[2])
        die("tokenizer file '%s': end-of-text id %u is not below the vocabulary size %u", path, header[3], header[2]);
    t->vocab_size = (int)header[2];
    t->eot = (int)header[3];

    /* records: uint8 length, bytes; packed into one array */
    t->offset = (uint32_t *)malloc_or_die(((size_t)t->vocab_size + 1) * sizeof(uint32_t));
    t->bytes = (unsigned char *)malloc_or_die(size - header_bytes);
    size_t at = header_bytes, packed = 0;
    for (int id = 0; id < t->vocab_size; id++) {
        if (at >= size) die("tokenizer file '%s': truncated: ends before token %d of %d", path, id, t->vocab_size);
        size_t n = file[at++];
        if (n == 0) die("tokenizer file '%s': token %d has length 0", path, id);
        if (at + n > size) die("tokenizer file '%s': truncated inside token %d", path, id);
        t->offset[id] = (uint32_t)packed;
        memcpy(t->bytes + packed, file + at, n);
        packed += n;
        at += n;
    }
    t->offset[t->vocab_size] = (uint32_t)packed;
    if (at != size)
        die("tokenizer file '%s': %zu unexpected bytes after the last of %d tokens", path, size - at, t->vocab_size);
    free(file);
    tokenizer_build_maps(t, path);
}

static inline void tokenizer_free(Tokenizer *t)
{
    free(t->bytes);
    free(t->offset);
    free(t->string_slots);
    free(t->pair_keys);
    free(t->pair_ids);
    memset(t, 0, sizeof(*t));
}

static inline int tokenizer_eot(const Tokenizer *t) { return t->eot; }

static inline const unsigned char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->vocab_size) return NULL;
    *len = tokenizer_token_length(t, id);
    return t->bytes + t->offset[id];
}

/* ------------------------------------------------------------ encoding */

/* Binary min-heap of uint64 keys (rank << TOKENIZER_POS_BITS | position). */
static inline void tokenizer_heap_push(uint64_t *heap, size_t *count, uint64_t key)
{
    size_t i = (*count)++;
    while (i > 0 && heap[(i - 1) / 2] > key) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = key;
}

static inline uint64_t tokenizer_heap_pop(uint64_t *heap, size_t *count)
{
    uint64_t top = heap[0], last = heap[--(*count)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *count) break;
        if (child + 1 < *count && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= last) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = last;
    return top;
}

/* Queue the merge of the parts starting at `left` and `right`, if they spell a token. */
static inline void tokenizer_queue_pair(const Tokenizer *t, const int *ids, size_t left, size_t right,
                                        uint64_t *heap, size_t *count)
{
    int merged = tokenizer_lookup_pair(t, ids[left], ids[right]);
    if (merged >= 0) tokenizer_heap_push(heap, count, (uint64_t)merged << TOKENIZER_POS_BITS | left);
}

/* BPE of one piece of n >= 2 bytes that is not itself a token. The parts
   form a linked list over byte positions: a part starting at byte p has
   token ids[p] (-1 once merged into its left neighbour) and neighbours
   prev[p], next[p] (n = none on the right, SIZE_MAX = none on the left). */
static inline void tokenizer_merge_piece(const Tokenizer *t, const unsigned char *piece, size_t n, TokenList *out)
{
    enum { STACK_BYTES = 256 };
    int stack_ids[STACK_BYTES];
    size_t stack_links[2 * STACK_BYTES];
    uint64_t stack_heap[3 * STACK_BYTES];
    int on_stack = n <= STACK_BYTES;
    int *ids = on_stack ? stack_ids : (int *)malloc_or_die(n * sizeof(int));
    size_t *prev = on_stack ? stack_links : (size_t *)malloc_or_die(2 * n * sizeof(size_t)), *next = prev + n;
    uint64_t *heap = on_stack ? stack_heap : (uint64_t *)malloc_or_die(3 * n * sizeof(uint64_t));
    size_t heap_count = 0;
    for (size_t p = 0; p < n; p++) {
        ids[p] = t->byte_token[piece[p]];
        prev[p] = p == 0 ? SIZE_MAX : p - 1;
        next[p] = p + 1;
    }
    for (size_t p = 0; p + 1 < n; p++) tokenizer_queue_pair(t, ids, p, p + 1, heap, &heap_count);
    const uint64_t pos_mask = ((uint64_t)1 << TOKENIZER_POS_BITS) - 1;
    while (heap_count > 0) {
        uint64_t key = tokenizer_heap_pop(heap, &heap_count);
        int merged = (int)(key >> TOKENIZER_POS_BITS);
        size_t left = (size_t)(key & pos_mask), right = next[left];
        /* stale entry: the left part was absorbed, or either part has grown since */
        if (ids[left] < 0 || right == n || tokenizer_lookup_pair(t, ids[left], ids[right]) != merged) continue;
        ids[left] = merged;
        ids[right] = -1;
        next[left] = next[right];
        if (next[left] < n) prev[next[left]] = left;
        if (prev[left] != SIZE_MAX) tokenizer_queue_pair(t, ids, prev[left], left, heap, &heap_count);
        if (next[left] < n) tokenizer_queue_pair(t, ids, left, next[left], heap, &heap_count);
    }
    for (size_t p = 0; p < n; p = next[p]) token_list_push(out, ids[p]);
    if (!on_stack) {
        free(ids);
        free(prev);
        free(heap);
    }
}

static inline void tokenizer_encode_piece(const Tokenizer *t, const unsigned char *piece, size_t n, TokenList *out)
{
    int whole = tokenizer_lookup_string(t, piece, n);
    if (whole >= 0) token_list_push(out, whole);
    else tokenizer_merge_piece(t, piece, n, out);
}

/* Append the ids of text[0..len) to out. Any bytes are accepted. */
static inline void tokenizer_encode(const Tokenizer *t, const void *text, size_t len, TokenList *out)
{
    const unsigned char *s = (const unsigned char *)text;
    if (len >= ((uint64_t)1 << TOKENIZER_POS_BITS)) die("tokenizer_encode: %zu bytes is too long for one call", len);
    for (size_t pos = 0; pos < len;) {
        size_t n = gpt2_piece_length(s + pos, len - pos);
        tokenizer_encode_piece(t, s + pos, n, out);
        pos += n;
    }
}

/* ------------------------------------------------------------ decoding */

/* The bytes of ids[0..n) in a malloc'd buffer (plus a terminating 0 not
   counted in *len). Dies on an id outside the vocabulary. */
static inline unsigned char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            die("tokenizer_decode: id %d at index %zu is outside the vocabulary (0..%d)", ids[i], i,
                t->vocab_size - 1);
        total += tokenizer_token_length(t, ids[i]);
    }
    unsigned char *out = (unsigned char *)malloc_or_die(total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = tokenizer_token_length(t, ids[i]);
        memcpy(out + at, t->bytes + t->offset[ids[i]], k);
        at += k;
    }
    out[total] = 0;
    *len = total;
    return out;
}

#endif /* PACKLM_TOKENIZER_H */
