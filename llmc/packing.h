/*
 * packing.h — how documents of one token stream are laid into rows of T.
 *
 * Input: a stream of n tokens cut into documents, doc i = tokens
 * [doc_start[i], doc_start[i+1]) with doc_start[num_docs] = n. Output:
 * PackedRows, a list of rows; row r is pieces[row_begin[r] .. row_begin[r+1]),
 * each piece a run of stream tokens inside one document that becomes one
 * attention segment. A row holds at most T tokens; the rest is padding.
 *
 *   PACK_CHUNK    llm.c stream order: row r is stream tokens [rT, rT+T); a
 *                 document crossing a row boundary continues as a new piece at
 *                 the next row start. Only the stream's last row is padded.
 *   PACK_BESTFIT  documents longer than T are cut into pieces of T plus a
 *                 remainder; documents that fit stay whole. Over each window
 *                 of `window_docs` documents, pieces are sorted longest first
 *                 and each goes into the open row with the least room that
 *                 still fits it (best-fit decreasing); ties resolved by
 *                 stream position and row age, so the result is deterministic.
 *
 * Targets are not decided here: a token's target is the next stream token
 * (the following document's end-of-text at a document end), see dataloader.h.
 */
#ifndef PACKLM_PACKING_H
#define PACKLM_PACKING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "utils.h"

typedef enum { PACK_CHUNK = 0, PACK_BESTFIT = 1 } PackingMode;

typedef struct {
    int64_t start; /* first stream token */
    int len;       /* tokens, 1..T */
} Piece;

/* Counts over everything packed; ratios are taken at print time. */
typedef struct {
    int64_t rows, tokens, padding;   /* padding = rows*T - tokens */
    int64_t docs, docs_split;        /* documents, those spread over > 1 piece */
    int64_t pieces;                  /* document segments (padding excluded) */
} PackingStats;

typedef struct {
    int num_rows;
    int *row_begin; /* (num_rows + 1) indices into pieces */
    Piece *pieces;  /* (num_pieces) grouped by row */
    int num_pieces;
    PackingStats stats;
} PackedRows;

static inline const char *packing_mode_name(PackingMode m)
{
    return m == PACK_CHUNK ? "chunk" : "bestfit";
}

/* "chunk" / "bestfit" -> mode; returns 0 if the name is neither. */
static inline int packing_mode_parse(const char *name, PackingMode *mode)
{
    if (strcmp(name, "chunk") == 0) *mode = PACK_CHUNK;
    else if (strcmp(name, "bestfit") == 0) *mode = PACK_BESTFIT;
    else return 0;
    return 1;
}

static inline void packing_stats_add(PackingStats *into, const PackingStats *s)
{
    into->rows += s->rows;
    into->tokens += s->tokens;
    into->padding += s->padding;
    into->docs += s->docs;
    into->docs_split += s->docs_split;
    into->pieces += s->pieces;
}

static inline void packing_stats_print(const PackingStats *s, FILE *f)
{
    double tok = (double)(s->tokens + s->padding);
    fprintf(f, "  rows %lld, documents %lld, segments %lld\n", (long long)s->rows, (long long)s->docs,
            (long long)s->pieces);
    fprintf(f, "  padding %.2f%%, documents split %.2f%%, mean segment length %.1f tokens\n",
            tok > 0 ? 100.0 * s->padding / tok : 0.0, s->docs ? 100.0 * s->docs_split / s->docs : 0.0,
            s->pieces ? (double)s->tokens / s->pieces : 0.0);
}

static inline void packed_rows_free(PackedRows *p)
{
    free(p->row_begin);
    free(p->pieces);
    memset(p, 0, sizeof(*p));
}

/* Stats that depend only on the finished rows. */
static inline void packed_rows_finish_stats(PackedRows *p, int num_docs, int64_t num_tokens, int T)
{
    p->stats.rows = p->num_rows;
    p->stats.tokens = num_tokens;
    p->stats.padding = (int64_t)p->num_rows * T - num_tokens;
    p->stats.docs = num_docs;
    p->stats.pieces = p->num_pieces;
}

static inline void pack_chunk(PackedRows *p, const int64_t *doc_start, int num_docs, int T)
{
    int64_t n = doc_start[num_docs];
    memset(p, 0, sizeof(*p));
    p->num_rows = (int)((n + T - 1) / T);
    p->row_begin = (int *)malloc_or_die(((size_t)p->num_rows + 1) * sizeof(int));
    /* every row boundary inside a document adds one piece */
    p->pieces = (Piece *)malloc_or_die(((size_t)num_docs + p->num_rows) * sizeof(Piece));
    int d = 0;
    for (int r = 0; r < p->num_rows; r++) {
        int64_t row_start = (int64_t)r * T, row_end = row_start + T < n ? row_start + T : n;
        p->row_begin[r] = p->num_pieces;
        for (int64_t t = row_start; t < row_end;) {
            while (doc_start[d + 1] <= t) d++;
            int64_t end = doc_start[d + 1] < row_end ? doc_start[d + 1] : row_end;
            Piece pc = {t, (int)(end - t)};
            p->pieces[p->num_pieces++] = pc;
            t = end;
        }
    }
    p->row_begin[p->num_rows] = p->num_pieces;
    for (int i = 0; i < num_docs; i++) {
        int64_t first_boundary = (doc_start[i] / T + 1) * (int64_t)T; /* first multiple of T after start */
        p->stats.docs_split += first_boundary < doc_start[i + 1];
    }
    packed_rows_finish_stats(p, num_docs, n, T);
}

/* Longest first; equal lengths in stream order. */
static int piece_cmp_longest_first(const void *a, const void *b)
{
    const Piece *x = (const Piece *)a, *y = (const Piece *)b;
    if (x->len != y->len) return y->len - x->len;
    return (x->start > y->start) - (x->start < y->start);
}

/* Open rows grouped by free room (1..T): a bitmap of non-empty rooms plus a
   stack of rows per room, so "least room >= len" is a short word scan. */
typedef struct {
    int T;
    uint64_t *nonempty; /* bit c set: some row has exactly c free */
    int *top;           /* (T+1) last row pushed with that room, or -1 */
    int *below;         /* per row: the next row down the same stack */
} RoomIndex;

static inline void room_push(RoomIndex *ix, int row, int room)
{
    ix->below[row] = ix->top[room];
    ix->top[room] = row;
    ix->nonempty[room / 64] |= 1ull << (room % 64);
}

static inline int room_pop(RoomIndex *ix, int room)
{
    int row = ix->top[room];
    ix->top[room] = ix->below[row];
    if (ix->top[room] < 0) ix->nonempty[room / 64] &= ~(1ull << (room % 64));
    return row;
}

/* Smallest room >= len that some open row has, or 0 if none. */
static inline int room_find(const RoomIndex *ix, int len)
{
    int words = ix->T / 64 + 1;
    int w = len / 64;
    uint64_t bits = ix->nonempty[w] & (~0ull << (len % 64));
    while (!bits) {
        if (++w >= words) return 0;
        bits = ix->nonempty[w];
    }
    return w * 64 + __builtin_ctzll(bits);
}

static inline void pack_bestfit(PackedRows *p, const int64_t *doc_start, int num_docs, int T, int window_docs)
{
    int64_t n = doc_start[num_docs];
    memset(p, 0, sizeof(*p));
    /* every piece but a document's last is a full row, so pieces <= docs + n/T */
    size_t max_pieces = (size_t)num_docs + (size_t)(n / T);
    Piece *order = (Piece *)malloc_or_die(max_pieces * sizeof(Piece));
    int *piece_row = (int *)malloc_or_die(max_pieces * sizeof(int));
    int *row_count = (int *)calloc_or_die(max_pieces, sizeof(int));
    RoomIndex ix = {T, (uint64_t *)calloc_or_die((size_t)T / 64 + 1, sizeof(uint64_t)),
                    (int *)malloc_or_die(((size_t)T + 1) * sizeof(int)),
                    (int *)malloc_or_die(max_pieces * sizeof(int))};
    for (int c = 0; c <= T; c++) ix.top[c] = -1;

    int num_pieces = 0;
    for (int w0 = 0; w0 < num_docs; w0 += window_docs) {
        int w1 = w0 + window_docs < num_docs ? w0 + window_docs : num_docs;
        int first = num_pieces;
        for (int d = w0; d < w1; d++) {
            int64_t s = doc_start[d], e = doc_start[d + 1];
            p->stats.docs_split += e - s > T;
            for (int64_t t = s; t < e; t += T) {
                Piece pc = {t, (int)(e - t < T ? e - t : T)};
                order[num_pieces++] = pc;
            }
        }
        qsort(order + first, (size_t)(num_pieces - first), sizeof(Piece), piece_cmp_longest_first);
        for (int i = first; i < num_pieces; i++) {
            int len = order[i].len, room = room_find(&ix, len), row;
            if (room) {
                row = room_pop(&ix, room);
            } else {
                row = p->num_rows++;
                room = T;
            }
            piece_row[i] = row;
            row_count[row]++;
            if (room - len > 0) room_push(&ix, row, room - len);
        }
        /* rows never span windows: close every open row */
        for (int c = 1; c <= T; c++) ix.top[c] = -1;
        memset(ix.nonempty, 0, ((size_t)T / 64 + 1) * sizeof(uint64_t));
    }

    /* group pieces by row, keeping placement order inside a row */
    p->num_pieces = num_pieces;
    p->row_begin = (int *)malloc_or_die(((size_t)p->num_rows + 1) * sizeof(int));
    p->pieces = (Piece *)malloc_or_die((size_t)(num_pieces ? num_pieces : 1) * sizeof(Piece));
    p->row_begin[0] = 0;
    for (int r = 0; r < p->num_rows; r++) p->row_begin[r + 1] = p->row_begin[r] + row_count[r];
    for (int r = 0; r < p->num_rows; r++) row_count[r] = p->row_begin[r];
    for (int i = 0; i < num_pieces; i++) p->pieces[row_count[piece_row[i]]++] = order[i];
    packed_rows_finish_stats(p, num_docs, n, T);

    free(order);
    free(piece_row);
    free(row_count);
    free(ix.nonempty);
    free(ix.top);
    free(ix.below);
}

static inline void pack_documents(PackedRows *p, PackingMode mode, const int64_t *doc_start, int num_docs, int T,
                                  int window_docs)
{
    if (mode == PACK_CHUNK) pack_chunk(p, doc_start, num_docs, T);
    else pack_bestfit(p, doc_start, num_docs, T, window_docs);
}

#endif /* PACKLM_PACKING_H */
