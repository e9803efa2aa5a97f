/*
 * config.h — the model configuration: which family (gpt2 / llama) and its
 * shape, parsed from a descriptor string such as
 *
 *     gpt2:d12                      12 layers, C=768, 12 heads (GPT-2 124M)
 *     gpt2:d24 / d36 / d48          GPT-2 medium / large / xl shapes
 *     llama:1B                      16 layers, C=2048, 32 heads, 8 kv heads, FFN 8192
 *     llama:1B,L=4,C=256,NH=4,NKV=2,F=512,V=512,T=128,theta=10000,tied=0
 *
 * Overrides after the base name are comma-separated key=value pairs:
 *   L (layers), C (channels), NH (heads), NKV (kv heads, llama), F (FFN hidden),
 *   V (vocabulary), T (max sequence length / position table), theta (RoPE base),
 *   eps (norm epsilon), tied (1 = head shares the token embedding),
 *   llama3 (Llama 3 RoPE scaling FACTOR/LOW/HIGH/ORIGINAL_T, e.g. llama3=32/1/4/8192;
 *   the frequency rule is in rope_freq.h).
 *
 * Shapes used everywhere: HD = C / NH (head dim), QKV width = (NH + 2*NKV)*HD,
 * Vp = V rounded up to a multiple of 128 (padded logits never get probability).
 * Bad descriptors die with a message naming the problem.
 */
#ifndef PACKLM_CONFIG_H
#define PACKLM_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope_freq.h"
#include "utils.h"

typedef enum { MODEL_GPT2 = 0, MODEL_LLAMA = 1 } ModelFamily;

typedef struct {
    ModelFamily family;
    int num_layers;        /* L */
    int channels;          /* C */
    int num_heads;         /* NH */
    int num_kv_heads;      /* NKV (== NH for gpt2) */
    int head_dim;          /* HD = C / NH */
    int ffn_hidden;        /* F: 4*C for gpt2, given for llama */
    int vocab_size;        /* V: real tokens (50257 for GPT-2 BPE) */
    int padded_vocab_size; /* Vp: V rounded up to a multiple of 128 */
    int max_seq_len;       /* gpt2: rows of the position table; llama: largest T */
    float rope_theta;      /* llama only */
    RopeScaling rope_scaling; /* llama only: Llama 3 frequency scaling, factor 0 = none */
    float norm_eps;        /* LayerNorm / RMSNorm epsilon */
    int tied_embeddings;   /* 1: the head reuses the token embedding */
} ModelConfig;

#define GPT2_VOCAB_SIZE 50257
#define VOCAB_PAD_MULTIPLE 128

static inline int model_qkv_width(const ModelConfig *c)
{
    return (c->num_heads + 2 * c->num_kv_heads) * c->head_dim;
}

/* Width of the first FFN matmul's output: F (gpt2) or 2F (llama: gate | up). */
static inline int model_fc_width(const ModelConfig *c)
{
    return c->family == MODEL_LLAMA ? 2 * c->ffn_hidden : c->ffn_hidden;
}

static inline int round_up_to(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

/* Check the derived fields and the divisibility rules; die on any violation. */
static inline void model_config_finish(ModelConfig *c, const char *descriptor)
{
    if (c->num_layers < 1) die("model '%s': L must be >= 1 (got %d)", descriptor, c->num_layers);
    if (c->channels < 1) die("model '%s': C must be >= 1 (got %d)", descriptor, c->channels);
    if (c->num_heads < 1) die("model '%s': NH must be >= 1 (got %d)", descriptor, c->num_heads);
    if (c->channels % c->num_heads != 0)
        die("model '%s': heads must divide channels (C=%d, NH=%d)", descriptor, c->channels, c->num_heads);
    if (c->family == MODEL_GPT2 && c->num_kv_heads != c->num_heads)
        die("model '%s': gpt2 has no grouped-query attention (NKV=%d, NH=%d)", descriptor,
            c->num_kv_heads, c->num_heads);
    if (c->num_kv_heads < 1 || c->num_heads % c->num_kv_heads != 0)
        die("model '%s': kv heads must divide heads (NH=%d, NKV=%d)", descriptor, c->num_heads,
            c->num_kv_heads);
    c->head_dim = c->channels / c->num_heads;
    if (c->family == MODEL_LLAMA && c->head_dim % 2 != 0)
        die("model '%s': RoPE needs an even head dim (HD=%d)", descriptor, c->head_dim);
    if (c->ffn_hidden < 1) die("model '%s': F must be >= 1 (got %d)", descriptor, c->ffn_hidden);
    if (c->vocab_size < 2) die("model '%s': V must be >= 2 (got %d)", descriptor, c->vocab_size);
    if (c->max_seq_len < 1) die("model '%s': T must be >= 1 (got %d)", descriptor, c->max_seq_len);
    if (!(c->norm_eps > 0.0f)) die("model '%s': eps must be > 0", descriptor);
    if (c->family == MODEL_LLAMA && !(c->rope_theta > 0.0f)) die("model '%s': theta must be > 0", descriptor);
    const RopeScaling *rs = &c->rope_scaling;
    if (c->family == MODEL_GPT2 && rs->factor != 0.0f) die("model '%s': gpt2 has no RoPE to scale", descriptor);
    if (rs->factor != 0.0f && !(rs->factor >= 1.0f && rs->low_freq_factor > 0.0f &&
                                rs->high_freq_factor > rs->low_freq_factor && rs->original_max_pos > 0))
        die("model '%s': llama3 RoPE scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and an "
            "original length > 0 (got %g/%g/%g/%d)", descriptor, (double)rs->factor, (double)rs->low_freq_factor,
            (double)rs->high_freq_factor, rs->original_max_pos);
    c->padded_vocab_size = round_up_to(c->vocab_size, VOCAB_PAD_MULTIPLE);
}

/* Base shapes before overrides. Returns 0 if the base name is unknown. */
static inline int model_config_base(ModelConfig *c, const char *base)
{
    memset(c, 0, sizeof(*c));
    c->vocab_size = GPT2_VOCAB_SIZE;
    c->norm_eps = 1e-5f;
    c->tied_embeddings = 1;
    c->rope_theta = 500000.0f;
    if (strncmp(base, "gpt2:d", 6) == 0) {
        char *end = NULL;
        long depth = strtol(base + 6, &end, 10);
        if (end == base + 6 || *end != '\0' || depth < 1 || depth > 1000) return 0;
        /* the GPT-2 family table: 124M, 350M, 774M, 1558M; other depths use 64 channels per layer */
        int channels = (int)depth * 64, heads = (int)depth;
        if (depth == 24) { channels = 1024; heads = 16; }
        if (depth == 36) { channels = 1280; heads = 20; }
        if (depth == 48) { channels = 1600; heads = 25; }
        c->family = MODEL_GPT2;
        c->num_layers = (int)depth;
        c->channels = channels;
        c->num_heads = c->num_kv_heads = heads;
        c->ffn_hidden = 4 * channels;
        c->max_seq_len = 1024;
        return 1;
    }
    struct { const char *name; int L, C, NH, NKV, F; } llamas[] = {
        {"llama:1B", 16, 2048, 32, 8, 8192},
        {"llama:3B", 28, 3072, 24, 8, 8192},
        {"llama:8B", 32, 4096, 32, 8, 14336},
    };
    for (size_t i = 0; i < sizeof(llamas) / sizeof(llamas[0]); i++) {
        if (strcmp(base, llamas[i].name) == 0) {
            c->family = MODEL_LLAMA;
            c->num_layers = llamas[i].L;
            c->channels = llamas[i].C;
            c->num_heads = llamas[i].NH;
            c->num_kv_heads = llamas[i].NKV;
            c->ffn_hidden = llamas[i].F;
            c->max_seq_len = 8192;
            return 1;
        }
    }
    return 0;
}

static inline void model_config_apply_override(ModelConfig *c, const char *key, const char *value,
                                               const char *descriptor)
{
    char what[160];
    snprintf(what, sizeof(what), "model '%s': override %s", descriptor, key);
    if (strcmp(key, "theta") == 0) { c->rope_theta = (float)parse_double_or_die(value, what); return; }
    if (strcmp(key, "eps") == 0) { c->norm_eps = (float)parse_double_or_die(value, what); return; }
    if (strcmp(key, "llama3") == 0) {
        RopeScaling *rs = &c->rope_scaling;
        if (sscanf(value, "%g/%g/%g/%d", &rs->factor, &rs->low_freq_factor, &rs->high_freq_factor,
                   &rs->original_max_pos) != 4)
            die("%s: '%s' is not FACTOR/LOW/HIGH/ORIGINAL_T (e.g. 32/1/4/8192)", what, value);
        return;
    }
    long v = parse_long_or_die(value, what);
    if (v < 0 || v > 1000000000L) die("%s: value %ld out of range", what, v);
    int iv = (int)v;
    if (strcmp(key, "L") == 0) c->num_layers = iv;
    else if (strcmp(key, "C") == 0) c->channels = iv;
    else if (strcmp(key, "NH") == 0) {
        /* gpt2 keeps NKV == NH; llama keeps its own NKV unless overridden */
        if (c->family == MODEL_GPT2) c->num_kv_heads = iv;
        c->num_heads = iv;
    } else if (strcmp(key, "NKV") == 0) c->num_kv_heads = iv;
    else if (strcmp(key, "F") == 0) c->ffn_hidden = iv;
    else if (strcmp(key, "V") == 0) c->vocab_size = iv;
    else if (strcmp(key, "T") == 0) c->max_seq_len = iv;
    else if (strcmp(key, "tied") == 0) c->tied_embeddings = iv != 0;
    else die("model '%s': unknown override key '%s' (known: L C NH NKV F V T theta eps tied llama3)", descriptor, key);
}

/* Parse "family:size[,key=value...]" into *c, or die with a clear message. */
static inline void model_config_parse(ModelConfig *c, const char *descriptor)
{
    char buf[512];
    if (strlen(descriptor) >= sizeof(buf)) die("model descriptor too long: '%s'", descriptor);
    strcpy(buf, descriptor);
    char *rest = strchr(buf, ',');
    if (rest) *rest++ = '\0';
    if (!model_config_base(c, buf))
        die("unknown model descriptor '%s' (expected gpt2:dN such as gpt2:d12, or llama:1B / llama:3B / "
            "llama:8B, optionally followed by ,key=value overrides)", descriptor);
    int ffn_explicit = 0;
    while (rest && *rest) {
        char *next = strchr(rest, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(rest, '=');
        if (!eq) die("model '%s': override '%s' is not key=value", descriptor, rest);
        *eq = '\0';
        if (strcmp(rest, "F") == 0) ffn_explicit = 1;
        model_config_apply_override(c, rest, eq + 1, descriptor);
        rest = next;
    }
    if (c->family == MODEL_GPT2 && !ffn_explicit) c->ffn_hidden = 4 * c->channels;
    model_config_finish(c, descriptor);
}

/* A run's sequence length must fit the model (gpt2: the position table). */
static inline void model_config_check_seq_len(const ModelConfig *c, int T)
{
    if (T < 1) die("sequence length T must be >= 1 (got %d)", T);
    if (T > c->max_seq_len)
        die("sequence length T=%d is larger than the model's %s (%d)", T,
            c->family == MODEL_GPT2 ? "position table" : "maximum sequence length", c->max_seq_len);
}

static inline void model_config_print(const ModelConfig *c, FILE *out)
{
    fprintf(out, "model: %s L=%d C=%d NH=%d NKV=%d HD=%d F=%d V=%d Vp=%d T<=%d%s", 
            c->family == MODEL_GPT2 ? "gpt2" : "llama", c->num_layers, c->channels, c->num_heads,
            c->num_kv_heads, c->head_dim, c->ffn_hidden, c->vocab_size, c->padded_vocab_size,
            c->max_seq_len, c->tied_embeddings ? " tied" : " untied");
    if (c->family == MODEL_LLAMA) fprintf(out, " theta=%g", (double)c->rope_theta);
    if (c->family == MODEL_LLAMA && c->rope_scaling.factor > 0.0f)
        fprintf(out, " llama3=%g/%g/%g/%d", (double)c->rope_scaling.factor, (double)c->rope_scaling.low_freq_factor,
                (double)c->rope_scaling.high_freq_factor, c->rope_scaling.original_max_pos);
    fprintf(out, "\n");
}

/* The RoPE frequencies of a llama model (rope_freq.h). */
static inline RopeParams model_rope_params(const ModelConfig *c)
{
    RopeParams r = rope_params_plain(c->rope_theta);
    r.scaling = c->rope_scaling;
    return r;
}

#endif /* PACKLM_CONFIG_H */
