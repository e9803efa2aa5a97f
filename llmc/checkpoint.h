/*
 * checkpoint.h — the files a run writes and resumes from (host side, C).
 *
 * Model file (dev/INTERFACES.md "Files"): 256 int32 header, then every
 * parameter in params.h order (= llm.c's GPT-2 order, so llm.c's
 * gpt2_124M.bin / gpt2_124M_bf16.bin load, and our gpt2 files load in llm.c).
 *   [0] magic 20240326 (gpt2) / 20261125 (llama)   [1] version 3 fp32 / 5 bf16
 *   [2] max_seq_len [3] V [4] L [5] NH [6] C [7] Vp
 *   llama only: [8] NKV [9] F [10] tied [11] rope_theta [12] norm_eps (float bits)
 *   [13] Llama 3 RoPE scaling factor [14] low_freq_factor [15] high_freq_factor
 *   (float bits) [16] original max position; all 0 = no scaling (older files)
 * We write bf16 (version 5); we read both.
 *
 * Training state file, one per rank: what a resumed run needs beyond the
 * model file to continue bit-identically.
 *   TrainStateHeader (all uint64), loader state bytes, then fp32 master
 *   weights, AdamW m, AdamW v over the rank's [opt_offset, opt_offset+opt_size)
 *   slice of the flat parameter buffer, then a uint64 FNV-1a hash of every
 *   byte before it: a torn or corrupted file fails the hash.
 *
 * Every file is written to NAME.tmp, flushed, fsync'ed, then renamed, so a
 * crash leaves either the old or the new file, never half of one. Names in
 * the output directory: model_%08d.bin and state_%08d_%05d.bin (step, rank).
 */
#ifndef PACKLM_CHECKPOINT_H
#define PACKLM_CHECKPOINT_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "params.h"
#include "utils.h"

#define MODEL_MAGIC_GPT2 20240326
#define MODEL_MAGIC_LLAMA 20261125
#define MODEL_VERSION_FP32 3
#define MODEL_VERSION_BF16 5
#define MODEL_HEADER_INTS 256
#define STATE_MAGIC 0x31534c50u /* "PLS1" */

/* ---------------------------------------------------------------- bf16 bits */

/* fp32 -> bf16 bits, round to nearest even (NaN stays NaN). */
static inline uint16_t bf16_bits_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float float_from_bf16_bits(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- hashing */

#define FNV_OFFSET 0xcbf29ce484222325ull

static inline uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* ---------------------------------------------------------------- atomic files */

/* An OutFile (utils.h: NAME.tmp, fsync, rename) that also hashes what it writes. */
typedef struct {
    OutFile out;
    uint64_t hash; /* FNV-1a of everything written so far */
} AtomicFile;

static inline void atomic_open(AtomicFile *a, const char *path)
{
    out_file_open(&a->out, path);
    a->hash = FNV_OFFSET;
}

static inline void atomic_write(AtomicFile *a, const void *data, size_t bytes)
{
    out_file_write(&a->out, data, bytes);
    a->hash = fnv1a(a->hash, data, bytes);
}

static inline void atomic_commit(AtomicFile *a) { out_file_commit(&a->out); }

/* ---------------------------------------------------------------- model file */

static inline void model_header_fill(int *h, const ModelConfig *c, int version)
{
    memset(h, 0, MODEL_HEADER_INTS * sizeof(int));
    h[0] = c->family == MODEL_GPT2 ? MODEL_MAGIC_GPT2 : MODEL_MAGIC_LLAMA;
    h[1] = version;
    h[2] = c->max_seq_len;
    h[3] = c->vocab_size;
    h[4] = c->num_layers;
    h[5] = c->num_heads;
    h[6] = c->channels;
    h[7] = c->padded_vocab_size;
    if (c->family == MODEL_LLAMA) {
        h[8] = c->num_kv_heads;
        h[9] = c->ffn_hidden;
        h[10] = c->tied_embeddings;
        memcpy(&h[11], &c->rope_theta, 4);
        memcpy(&h[12], &c->norm_eps, 4);
        memcpy(&h[13], &c->rope_scaling.factor, 4);
        memcpy(&h[14], &c->rope_scaling.low_freq_factor, 4);
        memcpy(&h[15], &c->rope_scaling.high_freq_factor, 4);
        h[16] = c->rope_scaling.original_max_pos;
    }
}

/* Write bf16 parameters (bits) as a version-5 model file; returns the file's hash. */
static inline uint64_t checkpoint_write_model(const char *path, const ModelConfig *c, const uint16_t *params,
                                              size_t num_params)
{
    int header[MODEL_HEADER_INTS];
    model_header_fill(header, c, MODEL_VERSION_BF16);
    AtomicFile a;
    atomic_open(&a, path);
    atomic_write(&a, header, sizeof(header));
    atomic_write(&a, params, num_params * sizeof(uint16_t));
    atomic_commit(&a);
    return a.hash;
}

/*
 * Parse a model file's header into *c; *version gets 3 or 5. Dies naming the
 * file on a bad magic, version, shape, or a size that does not match.
 */
static inline void checkpoint_read_model_config(const char *path, ModelConfig *c, int *version)
{
    FILE *f = fopen_or_die(path, "rb");
    int h[MODEL_HEADER_INTS];
    fread_or_die(h, sizeof(int), MODEL_HEADER_INTS, f, path);
    if (fseek(f, 0, SEEK_END) != 0) die("'%s': cannot seek", path);
    long long file_bytes = ftell(f);
    fclose(f);
    if (h[0] != MODEL_MAGIC_GPT2 && h[0] != MODEL_MAGIC_LLAMA)
        die("'%s': not a model file (magic %d; expected %d for gpt2 or %d for llama)", path, h[0], MODEL_MAGIC_GPT2,
            MODEL_MAGIC_LLAMA);
    if (h[1] != MODEL_VERSION_FP32 && h[1] != MODEL_VERSION_BF16)
        die("'%s': unsupported version %d (expected %d fp32 or %d bf16)", path, h[1], MODEL_VERSION_FP32,
            MODEL_VERSION_BF16);
    for (int i = 2; i <= 7; i++)
        if (h[i] <= 0 || h[i] > 100000000) die("'%s': header field [%d] = %d is not a valid size", path, i, h[i]);
    memset(c, 0, sizeof(*c));
    c->family = h[0] == MODEL_MAGIC_GPT2 ? MODEL_GPT2 : MODEL_LLAMA;
    c->max_seq_len = h[2];
    c->vocab_size = h[3];
    c->num_layers = h[4];
    c->num_heads = h[5];
    c->channels = h[6];
    if (c->family == MODEL_GPT2) {
        c->num_kv_heads = h[5];
        c->ffn_hidden = 4 * h[6];
        c->tied_embeddings = 1;
        c->norm_eps = 1e-5f;
        c->rope_theta = 500000.0f;
    } else {
        c->num_kv_heads = h[8];
        c->ffn_hidden = h[9];
        c->tied_embeddings = h[10] != 0;
        memcpy(&c->rope_theta, &h[11], 4);
        memcpy(&c->norm_eps, &h[12], 4);
        memcpy(&c->rope_scaling.factor, &h[13], 4);
        memcpy(&c->rope_scaling.low_freq_factor, &h[14], 4);
        memcpy(&c->rope_scaling.high_freq_factor, &h[15], 4);
        c->rope_scaling.original_max_pos = h[16];
    }
    model_config_finish(c, path);
    if (c->padded_vocab_size != h[7])
        die("'%s': padded vocabulary %d does not match V=%d rounded up to a multiple of %d (%d)", path, h[7],
            c->vocab_size, VOCAB_PAD_MULTIPLE, c->padded_vocab_size);
    ParamLayout layout;
    param_layout_init(&layout, c);
    long long want = (long long)sizeof(h) + (long long)layout.total * (h[1] == MODEL_VERSION_BF16 ? 2 : 4);
    if (file_bytes != want)
        die("'%s': file has %lld bytes but its header describes %lld (%zu parameters, %s)%s", path, file_bytes, want,
            layout.total, h[1] == MODEL_VERSION_BF16 ? "bf16" : "fp32", file_bytes < want ? ": truncated" : "");
    *version = h[1];
}

/* Read the parameters (fp32 or bf16 on disk) as bf16 bits; returns the file's hash. */
static inline uint64_t checkpoint_read_model_params(const char *path, uint16_t *params, size_t num_params)
{
    ModelConfig c;
    int version;
    checkpoint_read_model_config(path, &c, &version);
    FILE *f = fopen_or_die(path, "rb");
    int header[MODEL_HEADER_INTS];
    fread_or_die(header, sizeof(int), MODEL_HEADER_INTS, f, path);
    uint64_t hash = fnv1a(FNV_OFFSET, header, sizeof(header));
    ParamLayout layout;
    param_layout_init(&layout, &c);
    if (layout.total != num_params)
        die("'%s': holds %zu parameters, the model needs %zu", path, layout.total, num_params);
    if (version == MODEL_VERSION_BF16) {
        fread_or_die(params, sizeof(uint16_t), num_params, f, path);
        hash = fnv1a(hash, params, num_params * sizeof(uint16_t));
    } else {
        enum { CHUNK = 1 << 16 };
        float *buf = (float *)malloc_or_die(CHUNK * sizeof(float));
        for (size_t done = 0; done < num_params; done += CHUNK) {
            size_t n = num_params - done < CHUNK ? num_params - done : CHUNK;
            fread_or_die(buf, sizeof(float), n, f, path);
            hash = fnv1a(hash, buf, n * sizeof(float));
            for (size_t i = 0; i < n; i++) params[done + i] = bf16_bits_from_float(buf[i]);
        }
        free(buf);
    }
    fclose(f);
    return hash;
}

/*
 * -e MODEL of either trainer: an existing file is a model file (its header
 * and length are checked here), anything else must be a descriptor such as
 * gpt2:d12. Fills *c; returns the file's version (3 or 5), or 0 for a descriptor.
 */
static inline int model_source_config(const char *arg, ModelConfig *c)
{
    struct stat st;
    if (stat(arg, &st) == 0) {
        int version;
        checkpoint_read_model_config(arg, c, &version);
        return version;
    }
    if (!strchr(arg, ':')) die("-e '%s': no such model file, and not a descriptor such as gpt2:d12 or llama:1B", arg);
    model_config_parse(c, arg);
    return 0;
}

/* ---------------------------------------------------------------- training state */

typedef struct {
    uint64_t magic, version;
    uint64_t step;            /* optimizer steps completed */
    uint64_t rank, num_ranks;
    uint64_t seed;            /* the run's --seed */
    uint64_t sample_rng;      /* state of the sampling Rng */
    uint64_t opt_offset, opt_size; /* this rank's optimizer slice of the flat parameters */
    uint64_t model_hash;      /* hash of the model file written with this state */
    uint64_t loader_bytes;    /* sizeof the dataloader state that follows */
    uint64_t skipped_in_a_row;
} TrainStateHeader;

/* Write the state of one rank: header, loader state, master weights, m, v, hash. */
static inline void checkpoint_write_state(const char *path, const TrainStateHeader *header,
                                          const void *loader_state, const float *master, const float *m,
                                          const float *v)
{
    TrainStateHeader hh = *header;
    const TrainStateHeader *h = &hh;
    hh.magic = STATE_MAGIC;
    hh.version = 1;
    AtomicFile a;
    atomic_open(&a, path);
    atomic_write(&a, h, sizeof(*h));
    atomic_write(&a, loader_state, h->loader_bytes);
    atomic_write(&a, master, h->opt_size * sizeof(float));
    atomic_write(&a, m, h->opt_size * sizeof(float));
    atomic_write(&a, v, h->opt_size * sizeof(float));
    uint64_t hash = a.hash;
    atomic_write(&a, &hash, sizeof(hash));
    atomic_commit(&a);
}

/* Read one state header; NULL or a message (file missing, not a state file, torn). */
static inline const char *checkpoint_read_state_header(const char *path, TrainStateHeader *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) return "cannot open the file";
    size_t got = fread(h, sizeof(*h), 1, f);
    fclose(f);
    if (got != 1) return "file is shorter than a state header (torn write?)";
    if (h->magic != STATE_MAGIC || h->version != 1) return "not a packlm training state file (bad magic/version)";
    return NULL;
}

/*
 * Read and verify a whole state file written for a slice of opt_size floats
 * and a loader state of loader_bytes. Returns NULL on success or a message;
 * the outputs are only meaningful on success.
 */
static inline const char *checkpoint_read_state(const char *path, TrainStateHeader *h, void *loader_state,
                                                size_t loader_bytes, float *master, float *m, float *v,
                                                size_t opt_size)
{
    const char *bad = checkpoint_read_state_header(path, h);
    if (bad) return bad;
    if (h->loader_bytes != loader_bytes) return "dataloader state size differs (written by another build?)";
    if (h->opt_size != opt_size) return "optimizer slice size differs from this model / rank layout";
    FILE *f = fopen(path, "rb");
    if (!f) return "cannot open the file";
    uint64_t hash = FNV_OFFSET, stored = 0;
    int ok = fread(h, sizeof(*h), 1, f) == 1;
    hash = fnv1a(hash, h, sizeof(*h));
    ok = ok && fread(loader_state, 1, loader_bytes, f) == loader_bytes;
    hash = fnv1a(hash, loader_state, loader_bytes);
    float *parts[3] = {master, m, v};
    for (int i = 0; i < 3 && ok; i++) {
        ok = fread(parts[i], sizeof(float), opt_size, f) == opt_size;
        hash = fnv1a(hash, parts[i], opt_size * sizeof(float));
    }
    ok = ok && fread(&stored, sizeof(stored), 1, f) == 1;
    int trailing = ok && fgetc(f) != EOF;
    fclose(f);
    if (!ok) return "file is truncated (torn write?)";
    if (trailing) return "file has bytes after its checksum";
    if (stored != hash) return "checksum mismatch: the file is corrupted or torn";
    return NULL;
}

/* ---------------------------------------------------------------- names, listing, pruning */

static inline void checkpoint_model_path(char *buf, size_t len, const char *dir, int step)
{
    snprintf(buf, len, "%s/model_%08d.bin", dir, step);
}

static inline void checkpoint_state_path(char *buf, size_t len, const char *dir, int step, int rank)
{
    snprintf(buf, len, "%s/state_%08d_%05d.bin", dir, step, rank);
}

static int checkpoint_int_compare(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Steps that have a model file in dir, ascending; returns how many (at most max). */
static inline int checkpoint_list_steps(const char *dir, int *steps, int max)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        /* exactly model_DDDDDDDD.bin */
        const char *name = e->d_name;
        if (strlen(name) != 18 || strncmp(name, "model_", 6) != 0 || strcmp(name + 14, ".bin") != 0) continue;
        int digits = 1;
        for (int i = 6; i < 14; i++) digits &= name[i] >= '0' && name[i] <= '9';
        if (digits) steps[n++] = atoi(name + 6);
    }
    closedir(d);
    qsort(steps, n, sizeof(int), checkpoint_int_compare);
    return n;
}

/* Delete all but the newest `keep` checkpoints (model + every rank's state). */
static inline void checkpoint_prune(const char *dir, int keep, int num_ranks)
{
    enum { MAX_CHECKPOINTS = 100000 };
    if (keep <= 0) return;
    int *steps = (int *)malloc_or_die(MAX_CHECKPOINTS * sizeof(int));
    int n = checkpoint_list_steps(dir, steps, MAX_CHECKPOINTS);
    for (int i = 0; i + keep < n; i++) {
        char path[4200];
        checkpoint_model_path(path, sizeof(path), dir, steps[i]);
        remove(path);
        for (int r = 0; r < num_ranks; r++) {
            checkpoint_state_path(path, sizeof(path), dir, steps[i], r);
            remove(path);
        }
    }
    free(steps);
}

/*
 * Read checkpoint `step` of `dir` as `rank` wrote it: the model's parameters
 * (bf16 bits, num_params), the state header, the loader state and the
 * optimizer slice of opt_size floats (opt = master | m | v). Returns NULL,
 * or why the checkpoint is unusable (torn or corrupted state file, a model
 * file that is not the one written with it, a step that does not match).
 */
static inline const char *checkpoint_load(const char *dir, int step, int rank, uint16_t *params, size_t num_params,
                                          TrainStateHeader *h, void *loader_state, size_t loader_bytes, float *opt,
                                          size_t opt_size)
{
    char model_path[4200], state_path[4200];
    checkpoint_model_path(model_path, sizeof(model_path), dir, step);
    checkpoint_state_path(state_path, sizeof(state_path), dir, step, rank);
    const char *bad = checkpoint_read_state(state_path, h, loader_state, loader_bytes, opt, opt + opt_size,
                                            opt + 2 * opt_size, opt_size);
    if (!bad && checkpoint_read_model_params(model_path, params, num_params) != h->model_hash)
        bad = "the model file next to it is not the one written with this state";
    if (!bad && h->step != (uint64_t)step) bad = "its step does not match its name";
    return bad;
}

#endif /* PACKLM_CHECKPOINT_H */
