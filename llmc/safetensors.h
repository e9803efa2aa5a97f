/*
 * safetensors.h — read and write the safetensors format of Hugging Face
 * model folders, single file or sharded.
 *
 * File layout: uint64 little-endian n; n bytes of JSON header; the data.
 * The header maps each tensor name to {"dtype": "BF16", "shape": [rows, cols],
 * "data_offsets": [begin, end]} (byte offsets into the data), plus an
 * optional "__metadata__" object of strings. Tensors tile the data exactly:
 * sorted by begin, each starts where the previous ended and the last ends
 * at the end of the file; end - begin = product(shape) * dtype size.
 * A sharded model is model-NNNNN-of-MMMMM.safetensors files plus
 * model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: file}}.
 *
 * Reading (never exits: every function returns 0 and writes a message naming
 * the file and the tensor into err, so fuzzing and tests can check it):
 *   st_parse(bytes, size, name, &file, err)    validate a whole file in memory
 *   st_open(path, &file, err) / st_close       the same on a file (mmap)
 *   st_model_open(dir, &model, err)            model.safetensors or the index + shards
 *   st_model_find(&model, name)                the tensor or NULL
 *   st_read_json(path, &root, err)             a whole JSON file (config.json, the index)
 *   st_tensor_read_bf16(file, tensor, shape, ndim, out, err)
 *                                              F32 / BF16 / F16 -> bf16 bits, checking the shape
 * Writing (dies naming the file; written to NAME.tmp, fsync'ed, renamed):
 *   st_write(path, tensors, n)                 one file of StWriteTensor {name, dtype, shape, data}
 *   st_write_sharded(dir, tensors, n, max_shard_bytes)  model.safetensors when it fits,
 *                                              else shards + index; returns the shard count
 */
#ifndef PACKLM_SAFETENSORS_H
#define PACKLM_SAFETENSORS_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "json.h"
#include "utils.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES (100u << 20) /* the reference implementation's limit */
#define ST_ERR_LEN 1024

typedef enum { ST_BOOL, ST_U8, ST_I8, ST_F8_E4M3, ST_F8_E5M2, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32,
               ST_I64, ST_U64, ST_F64, ST_NUM_DTYPES } StDtype;

static const char *const ST_DTYPE_NAMES[ST_NUM_DTYPES] = {"BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "I16", "U16", "F16",
                                                          "BF16", "I32", "U32", "F32", "I64", "U64", "F64"};
static const int ST_DTYPE_BYTES[ST_NUM_DTYPES] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;     /* byte offsets from the start of the FILE */
    const unsigned char *data; /* the tensor's bytes (inside the mapping) */
    int used;                /* set by the importer: tensors never used are reported */
} StTensor;

typedef struct {
    char path[4096];
    const unsigned char *bytes; /* the whole file */
    size_t size;
    int mapped;                 /* bytes came from mmap (st_open) */
    StTensor *tensors;
    int num_tensors;
} StFile;

typedef struct {
    StFile *files;
    int num_files;
} StModel;

/* Write a message into err (ST_ERR_LEN bytes); returns 0 for `return st_error(...)`. */
static inline int st_error(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ST_ERR_LEN, fmt, ap);
    va_end(ap);
    return 0;
}

static inline void st_file_free(StFile *f)
{
    for (int i = 0; i < f->num_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->num_tensors = 0;
}

static int st_begin_compare(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* One header entry `key: {dtype, shape, data_offsets}` into *t (offsets still data-relative). */
static inline int st_parse_entry(const char *file, const char *key, const JsonValue *v, StTensor *t, char *err)
{
    if (v->type != JSON_OBJECT) return st_error(err, "'%s': tensor '%s': header entry is not an object", file, key);
    const JsonValue *dtype = json_get(v, "dtype"), *shape = json_get(v, "shape"), *offsets = json_get(v, "data_offsets");
    if (!dtype || dtype->type != JSON_STRING) return st_error(err, "'%s': tensor '%s': no \"dtype\" string", file, key);
    t->dtype = ST_NUM_DTYPES;
    for (int d = 0; d < ST_NUM_DTYPES; d++)
        if (strcmp(dtype->string, ST_DTYPE_NAMES[d]) == 0) t->dtype = (StDtype)d;
    if (t->dtype == ST_NUM_DTYPES) return st_error(err, "'%s': tensor '%s': unknown dtype '%s'", file, key, dtype->string);
    if (!shape || shape->type != JSON_ARRAY) return st_error(err, "'%s': tensor '%s': no \"shape\" array", file, key);
    if (shape->count > ST_MAX_DIMS)
        return st_error(err, "'%s': tensor '%s': %zu dimensions (at most %d)", file, key, shape->count, ST_MAX_DIMS);
    t->ndim = (int)shape->count;
    uint64_t bytes = (uint64_t)ST_DTYPE_BYTES[t->dtype];
    for (int d = 0; d < t->ndim; d++) {
        uint64_t n;
        if (!json_as_uint64(&shape->items[d], &n) || n > (1ull << 40))
            return st_error(err, "'%s': tensor '%s': shape[%d] is not a size", file, key, d);
        t->shape[d] = (int64_t)n;
        if (n && bytes > UINT64_MAX / n) return st_error(err, "'%s': tensor '%s': shape overflows", file, key);
        bytes *= n;
    }
    if (!offsets || offsets->type != JSON_ARRAY || offsets->count != 2 || !json_as_uint64(&offsets->items[0], &t->begin) ||
        !json_as_uint64(&offsets->items[1], &t->end))
        return st_error(err, "'%s': tensor '%s': \"data_offsets\" is not [begin, end]", file, key);
    if (t->end < t->begin || t->end - t->begin != bytes)
        return st_error(err, "'%s': tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s of this shape needs %llu",
                        file, key, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->end - t->begin), ST_DTYPE_NAMES[t->dtype], (unsigned long long)bytes);
    return 1;
}

/* Every tensor inside the data, tiling it with no gap or overlap. */
static inline int st_check_tiling(StFile *f, uint64_t data_start, char *err)
{
    const uint64_t data_bytes = f->size - data_start;
    StTensor **order = (StTensor **)malloc((size_t)(f->num_tensors ? f->num_tensors : 1) * sizeof(StTensor *));
    if (!order) return st_error(err, "'%s': out of memory", f->path);
    for (int i = 0; i < f->num_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->num_tensors, sizeof(StTensor *), st_begin_compare);
    uint64_t at = 0;
    int ok = 1;
    for (int i = 0; i < f->num_tensors && ok; i++) {
        StTensor *t = order[i];
        if (t->end > data_bytes)
            ok = st_error(err, "'%s': tensor '%s': data_offsets end %llu is outside the file (%llu data bytes)", f->path,
                          t->name, (unsigned long long)t->end, (unsigned long long)data_bytes);
        else if (t->begin != at)
            ok = st_error(err, "'%s': tensor '%s': data starts at %llu but the previous tensor ends at %llu (%s)", f->path,
                          t->name, (unsigned long long)t->begin, (unsigned long long)at,
                          t->begin < at ? "overlap" : "gap");
        at = t->end;
        t->data = f->bytes + data_start + t->begin;
        t->begin += data_start;
        t->end += data_start;
    }
    if (ok && at != data_bytes)
        ok = st_error(err, "'%s': %llu bytes after the last tensor (data is %llu bytes, tensors cover %llu)", f->path,
                      (unsigned long long)(data_bytes - at), (unsigned long long)data_bytes, (unsigned long long)at);
    free(order);
    return ok;
}

/* Validate a whole file held in memory; on success f lists its tensors. */
static inline int st_parse(const unsigned char *bytes, size_t size, const char *path, StFile *f, char *err)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->bytes = bytes;
    f->size = size;
    if (size < 8) return st_error(err, "'%s': %zu bytes, shorter than the 8-byte header length", path, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
    if (n > ST_MAX_HEADER_BYTES || n > size - 8)
        return st_error(err, "'%s': header length %llu is larger than the file (%zu bytes) or the 100 MB limit", path,
                        (unsigned long long)n, size);
    JsonValue root;
    size_t where = 0;
    const char *bad = json_parse(bytes + 8, (size_t)n, &root, &where);
    if (bad) return st_error(err, "'%s': header is not valid JSON: %s at header byte %zu", path, bad, where);
    int ok = 1;
    if (root.type != JSON_OBJECT) ok = st_error(err, "'%s': header is not a JSON object", path);
    f->tensors = ok ? (StTensor *)calloc(root.count ? root.count : 1, sizeof(StTensor)) : NULL;
    if (ok && !f->tensors) ok = st_error(err, "'%s': out of memory", path);
    for (size_t i = 0; ok && i < root.count; i++) {
        const char *key = root.keys[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (root.items[i].type != JSON_OBJECT) ok = st_error(err, "'%s': __metadata__ is not an object", path);
            continue;
        }
        for (int k = 0; k < f->num_tensors && ok; k++)
            if (strcmp(f->tensors[k].name, key) == 0) ok = st_error(err, "'%s': tensor '%s' appears twice", path, key);
        StTensor *t = &f->tensors[f->num_tensors];
        if (ok) ok = st_parse_entry(path, key, &root.items[i], t, err);
        if (ok) {
            t->name = strdup(key);
            if (!t->name) ok = st_error(err, "'%s': out of memory", path);
            else f->num_tensors++;
        }
    }
    json_free(&root);
    if (ok) ok = st_check_tiling(f, 8 + n, err);
    if (!ok) st_file_free(f);
    return ok;
}

static inline int st_open(const char *path, StFile *f, char *err)
{
    memset(f, 0, sizeof(*f));
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return st_error(err, "'%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return st_error(err, "'%s': not a regular file", path);
    }
    const size_t size = (size_t)st.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) return st_error(err, "'%s': cannot map: %s", path, strerror(errno));
    static const unsigned char empty[1] = {0};
    if (!st_parse(size ? (const unsigned char *)map : empty, size, path, f, err)) {
        if (size) munmap(map, size);
        return 0;
    }
    f->mapped = size > 0;
    return 1;
}

static inline void st_close(StFile *f)
{
    if (f->mapped) munmap((void *)f->bytes, f->size);
    st_file_free(f);
    memset(f, 0, sizeof(*f));
}

static inline StTensor *st_file_find(const StFile *f, const char *name)
{
    for (int i = 0; i < f->num_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static inline void st_model_close(StModel *m)
{
    for (int i = 0; i < m->num_files; i++) st_close(&m->files[i]);
    free(m->files);
    memset(m, 0, sizeof(*m));
}

/* Open `file` of the index unless it is open already. */
static inline int st_model_add_file(StModel *m, const char *dir, const char *file, char *err)
{
    char path[4096];
    if (strchr(file, '/') || strcmp(file, "..") == 0) return st_error(err, "'%s/model.safetensors.index.json': shard name '%s' is not a plain file name", dir, file);
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    for (int i = 0; i < m->num_files; i++)
        if (strcmp(m->files[i].path, path) == 0) return 1;
    StFile *grown = (StFile *)realloc(m->files, (size_t)(m->num_files + 1) * sizeof(StFile));
    if (!grown) return st_error(err, "'%s': out of memory", path);
    m->files = grown;
    if (!st_open(path, &m->files[m->num_files], err)) return 0;
    m->num_files++;
    return 1;
}

/* A whole JSON file (config.json, an index) into *root; 0 and a message naming the file otherwise. */
static inline int st_read_json(const char *path, JsonValue *root, char *err)
{
    size_t size, where = 0;
    const char *why;
    unsigned char *text = read_file(path, &size, &why);
    if (!text) return st_error(err, "'%s': %s", path, why);
    const char *bad = json_parse(text, size, root, &where);
    free(text);
    if (bad) return st_error(err, "'%s': not valid JSON: %s at byte %zu", path, bad, where);
    return 1;
}

/* The index's weight map: open every shard it names, and check each named tensor is in its shard. */
static inline int st_model_open_index(const char *dir, const char *index_path, StModel *m, char *err)
{
    JsonValue root;
    if (!st_read_json(index_path, &root, err)) return 0;
    const JsonValue *map = json_get(&root, "weight_map");
    int ok = map && map->type == JSON_OBJECT ? 1 : st_error(err, "'%s': no \"weight_map\" object", index_path);
    for (size_t i = 0; ok && i < map->count; i++) {
        if (map->items[i].type != JSON_STRING)
            ok = st_error(err, "'%s': weight_map entry '%s' is not a file name", index_path, map->keys[i]);
        else ok = st_model_add_file(m, dir, map->items[i].string, err);
        if (!ok) break;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, map->items[i].string);
        for (int f = 0; f < m->num_files; f++)
            if (strcmp(m->files[f].path, path) == 0 && !st_file_find(&m->files[f], map->keys[i]))
                ok = st_error(err, "'%s': tensor '%s' is listed for '%s' but that file does not hold it", index_path,
                              map->keys[i], path);
    }
    json_free(&root);
    return ok;
}

/* dir/model.safetensors, or dir/model.safetensors.index.json and its shards. */
static inline int st_model_open(const char *dir, StModel *m, char *err)
{
    memset(m, 0, sizeof(*m));
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    struct stat st;
    int ok;
    if (stat(path, &st) == 0) {
        ok = st_model_open_index(dir, path, m, err);
    } else {
        ok = st_model_add_file(m, dir, "model.safetensors", err);
    }
    if (ok) {
        /* a tensor name must live in exactly one shard */
        for (int a = 0; a < m->num_files && ok; a++)
            for (int b = a + 1; b < m->num_files && ok; b++)
                for (int i = 0; i < m->files[a].num_tensors && ok; i++)
                    if (st_file_find(&m->files[b], m->files[a].tensors[i].name))
                        ok = st_error(err, "tensor '%s' is in both '%s' and '%s'", m->files[a].tensors[i].name,
                                      m->files[a].path, m->files[b].path);
    }
    if (!ok) st_model_close(m);
    return ok;
}

/* The tensor named `name` in any file of the model, and that file; NULL if absent. */
static inline StTensor *st_model_find(const StModel *m, const char *name, const StFile **file)
{
    for (int i = 0; i < m->num_files; i++) {
        StTensor *t = st_file_find(&m->files[i], name);
        if (t) {
            if (file) *file = &m->files[i];
            return t;
        }
    }
    return NULL;
}

/* fp16 bits -> fp32 (exact). */
static inline float st_float_from_f16_bits(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, frac = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | frac << 13; /* inf / NaN */
    else if (exp != 0) bits = sign | (exp + 112) << 23 | frac << 13;
    else if (frac == 0) bits = sign;
    else { /* subnormal: normalise */
        int e = -1;
        uint32_t f = frac;
        do { f <<= 1; e++; } while (!(f & 0x400u));
        bits = sign | (uint32_t)(112 - e) << 23 | (f & 0x3ffu) << 13;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/*
 * Tensor t of `file` as bf16 bits into out (product(shape) values). Its shape
 * must be exactly shape[0..ndim); F32 and F16 are rounded to nearest even,
 * BF16 is copied. Data is little-endian, as the format defines.
 */
static inline int st_tensor_read_bf16(const StFile *file, const StTensor *t, const int64_t *shape, int ndim,
                                      uint16_t *out, char *err)
{
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[256] = "", want[256] = "";
        for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        for (int d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
        return st_error(err, "'%s': tensor '%s' has shape [%s], expected [%s]", file->path, t->name, got, want);
    }
    const size_t n = (size_t)((t->end - t->begin) / (uint64_t)ST_DTYPE_BYTES[t->dtype]);
    const unsigned char *p = t->data;
    if (t->dtype == ST_BF16) {
        for (size_t i = 0; i < n; i++) out[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    } else if (t->dtype == ST_F16) {
        for (size_t i = 0; i < n; i++) out[i] = bf16_bits_from_float(st_float_from_f16_bits((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)));
    } else if (t->dtype == ST_F32) {
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            float f;
            memcpy(&f, &u, 4);
            out[i] = bf16_bits_from_float(f);
        }
    } else {
        return st_error(err, "'%s': tensor '%s' is %s; only F32, BF16 and F16 can be read", file->path, t->name,
                        ST_DTYPE_NAMES[t->dtype]);
    }
    return 1;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    const char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* product(shape) * dtype bytes, little-endian */
} StWriteTensor;

static inline uint64_t st_write_tensor_bytes(const StWriteTensor *t)
{
    uint64_t n = (uint64_t)ST_DTYPE_BYTES[t->dtype];
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

/* Append s to the growing buffer, JSON-escaped and quoted. */
static inline void st_json_quoted(ByteBuf *b, const char *s)
{
    byte_buf_push(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') byte_buf_push(b, '\\');
        if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            for (char *e = esc; *e; e++) byte_buf_push(b, (unsigned char)*e);
        } else {
            byte_buf_push(b, *p);
        }
    }
    byte_buf_push(b, '"');
}

static inline void st_json_append(ByteBuf *b, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (!byte_buf_push(b, (unsigned char)*p)) die("out of host memory building a safetensors header");
}

/* One safetensors file of tensors[0..n), in that order, written atomically. Returns its size. */
static inline uint64_t st_write(const char *path, const StWriteTensor *tensors, int n)
{
    ByteBuf h = {0};
    st_json_append(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const StWriteTensor *t = &tensors[i];
        st_json_append(&h, ",");
        st_json_quoted(&h, t->name);
        st_json_append(&h, ":{\"dtype\":\"%s\",\"shape\":[", ST_DTYPE_NAMES[t->dtype]);
        for (int d = 0; d < t->ndim; d++) st_json_append(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        const uint64_t bytes = st_write_tensor_bytes(t);
        st_json_append(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at, (unsigned long long)(at + bytes));
        at += bytes;
    }
    st_json_append(&h, "}");
    while (h.len % 8) byte_buf_push(&h, ' '); /* data starts 8-byte aligned */
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    AtomicFile a;
    atomic_open(&a, path);
    atomic_write(&a, len_bytes, 8);
    atomic_write(&a, h.bytes, h.len);
    for (int i = 0; i < n; i++) atomic_write(&a, tensors[i].data, st_write_tensor_bytes(&tensors[i]));
    atomic_commit(&a);
    free(h.bytes);
    return 8 + h.len + at;
}

/*
 * The model's tensors into dir: one model.safetensors when their bytes fit
 * max_shard_bytes (0 = no limit), else model-00001-of-0000K.safetensors ...
 * (tensors in order, a shard closed before it would pass the limit; a single
 * larger tensor gets a shard of its own) and model.safetensors.index.json.
 */
static inline int st_write_sharded(const char *dir, const StWriteTensor *tensors, int n, uint64_t max_shard_bytes)
{
    int *shard_of = (int *)malloc_or_die((size_t)(n ? n : 1) * sizeof(int));
    int shards = 0;
    uint64_t in_shard = 0, total = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t bytes = st_write_tensor_bytes(&tensors[i]);
        if (shards == 0 || (max_shard_bytes && in_shard > 0 && in_shard + bytes > max_shard_bytes)) {
            shards++;
            in_shard = 0;
        }
        shard_of[i] = shards - 1;
        in_shard += bytes;
        total += bytes;
    }
    char path[8192];
    if (shards <= 1) {
        snprintf(path, sizeof(path), "%s/model.safetensors", dir);
        st_write(path, tensors, n);
        free(shard_of);
        return 1;
    }
    ByteBuf index = {0};
    st_json_append(&index, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {", (unsigned long long)total);
    for (int s = 0, first = 0; s < shards; s++) {
        int last = first;
        while (last < n && shard_of[last] == s) last++;
        char name[64];
        snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, shards);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        st_write(path, tensors + first, last - first);
        for (int i = first; i < last; i++) {
            st_json_append(&index, "%s\n    ", i ? "," : "");
            st_json_quoted(&index, tensors[i].name);
            st_json_append(&index, ": \"%s\"", name);
        }
        first = last;
    }
    st_json_append(&index, "\n  }\n}\n");
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    AtomicFile a;
    atomic_open(&a, path);
    atomic_write(&a, index.bytes, index.len);
    atomic_commit(&a);
    free(index.bytes);
    free(shard_of);
    return shards;
}

#endif /* PACKLM_SAFETENSORS_H */
