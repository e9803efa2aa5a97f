/*
 * hf_model.h — how a Hugging Face model folder maps onto our model file:
 * the tensor names and slices (both directions), and config.json.
 *
 * Tensors (HF name -> a slice of ours; every weight of ours is (out, in)):
 *   gpt2 (GPT2LMHeadModel)                       llama (LlamaForCausalLM)
 *   transformer.wte.weight   wte rows [0, V)     model.embed_tokens.weight        wte rows [0, V)
 *   transformer.wpe.weight   wpe                 model.layers.L.input_layernorm   ln1w
 *   transformer.h.L.ln_1.{weight,bias}           self_attn.{q,k,v}_proj.weight    qkvw rows q | k | v
 *   attn.c_attn.{weight,bias} qkvw^T, qkvb       self_attn.o_proj.weight          attprojw
 *   attn.c_proj.{weight,bias} attprojw^T, b      post_attention_layernorm.weight  ln2w
 *   transformer.h.L.ln_2.{weight,bias}           mlp.{gate,up}_proj.weight        fcw rows gate | up
 *   mlp.c_fc.{weight,bias}   fcw^T, fcb          mlp.down_proj.weight             fcprojw
 *   mlp.c_proj.{weight,bias} fcprojw^T, b        model.norm.weight                lnfw
 *   transformer.ln_f.{weight,bias}               lm_head.weight (untied only)     lm_head rows [0, V)
 * GPT-2's Conv1D layers store (in, out): those are transposed (^T). The
 * padded vocabulary rows [V, Vp) are not exported and import as zeros.
 *
 *   hf_tensor_map(cfg, map)        the HfTensor list of a config; returns its length
 *   hf_tensor_get(cfg, params, t, out)   export: gather one HF tensor (bf16 bits)
 *   hf_tensor_put(cfg, params, t, in)    import: scatter one HF tensor back
 *   hf_config_json(cfg, bos_eos, &buf)   config.json text (bos_eos < 0: no token ids)
 *   hf_config_read(path, cfg, err)       config.json -> ModelConfig, or 0 and a message
 *                                        naming what we cannot represent
 */
#ifndef PACKLM_HF_MODEL_H
#define PACKLM_HF_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "params.h"
#include "safetensors.h"

typedef struct {
    char name[160];
    int tensor, layer;  /* our tensor; the layer of a per-layer tensor, else 0 */
    size_t row0;        /* first row of the slice inside that (rows, cols) matrix */
    int rows, cols;     /* the slice of ours */
    int transpose;      /* stored (cols, rows) by HF: GPT-2 Conv1D */
    int vector;         /* stored 1-D, shape [cols] (rows == 1) */
} HfTensor;

static inline int hf_per_layer(int tensor) { return tensor >= PARAM_LN1W && tensor <= PARAM_FCPROJB; }

static inline void hf_add(HfTensor *map, int *n, const char *name, int tensor, int layer, size_t row0, int rows,
                          int cols, int transpose)
{
    HfTensor *t = &map[(*n)++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->tensor = tensor;
    t->layer = layer;
    t->row0 = row0;
    t->rows = rows;
    t->cols = cols;
    t->transpose = transpose;
    t->vector = rows == 1;
}

/* Upper bound of hf_tensor_map's length. */
static inline int hf_tensor_capacity(const ModelConfig *c) { return 12 * c->num_layers + 8; }

static inline int hf_tensor_map(const ModelConfig *c, HfTensor *map)
{
    const int L = c->num_layers, C = c->channels, V = c->vocab_size, F = c->ffn_hidden, HD = c->head_dim;
    const int q = c->num_heads * HD, kv = c->num_kv_heads * HD;
    int n = 0;
    char name[160];
    if (c->family == MODEL_GPT2) {
        hf_add(map, &n, "transformer.wte.weight", PARAM_WTE, 0, 0, V, C, 0);
        hf_add(map, &n, "transformer.wpe.weight", PARAM_WPE, 0, 0, c->max_seq_len, C, 0);
        for (int l = 0; l < L; l++) {
            /* (suffix, tensor, rows, cols, transposed) of layer l */
            const struct { const char *suffix; int tensor, rows, cols, transpose; } parts[] = {
                {"ln_1.weight", PARAM_LN1W, 1, C, 0},        {"ln_1.bias", PARAM_LN1B, 1, C, 0},
                {"attn.c_attn.weight", PARAM_QKVW, 3 * C, C, 1}, {"attn.c_attn.bias", PARAM_QKVB, 1, 3 * C, 0},
                {"attn.c_proj.weight", PARAM_ATTPROJW, C, C, 1}, {"attn.c_proj.bias", PARAM_ATTPROJB, 1, C, 0},
                {"ln_2.weight", PARAM_LN2W, 1, C, 0},        {"ln_2.bias", PARAM_LN2B, 1, C, 0},
                {"mlp.c_fc.weight", PARAM_FCW, F, C, 1},     {"mlp.c_fc.bias", PARAM_FCB, 1, F, 0},
                {"mlp.c_proj.weight", PARAM_FCPROJW, C, F, 1}, {"mlp.c_proj.bias", PARAM_FCPROJB, 1, C, 0},
            };
            for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                snprintf(name, sizeof(name), "transformer.h.%d.%s", l, parts[i].suffix);
                hf_add(map, &n, name, parts[i].tensor, l, 0, parts[i].rows, parts[i].cols, parts[i].transpose);
            }
        }
        hf_add(map, &n, "transformer.ln_f.weight", PARAM_LNFW, 0, 0, 1, C, 0);
        hf_add(map, &n, "transformer.ln_f.bias", PARAM_LNFB, 0, 0, 1, C, 0);
        return n;
    }
    hf_add(map, &n, "model.embed_tokens.weight", PARAM_WTE, 0, 0, V, C, 0);
    for (int l = 0; l < L; l++) {
        const struct { const char *suffix; int tensor; size_t row0; int rows, cols; } parts[] = {
            {"input_layernorm.weight", PARAM_LN1W, 0, 1, C},
            {"self_attn.q_proj.weight", PARAM_QKVW, 0, q, C},
            {"self_attn.k_proj.weight", PARAM_QKVW, (size_t)q, kv, C},
            {"self_attn.v_proj.weight", PARAM_QKVW, (size_t)(q + kv), kv, C},
            {"self_attn.o_proj.weight", PARAM_ATTPROJW, 0, C, q},
            {"post_attention_layernorm.weight", PARAM_LN2W, 0, 1, C},
            {"mlp.gate_proj.weight", PARAM_FCW, 0, F, C},
            {"mlp.up_proj.weight", PARAM_FCW, (size_t)F, F, C},
            {"mlp.down_proj.weight", PARAM_FCPROJW, 0, C, F},
        };
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
            snprintf(name, sizeof(name), "model.layers.%d.%s", l, parts[i].suffix);
            hf_add(map, &n, name, parts[i].tensor, l, parts[i].row0, parts[i].rows, parts[i].cols, 0);
        }
    }
    hf_add(map, &n, "model.norm.weight", PARAM_LNFW, 0, 0, 1, C, 0);
    if (!c->tied_embeddings) hf_add(map, &n, "lm_head.weight", PARAM_LM_HEAD, 0, 0, V, C, 0);
    return n;
}

/* The HF shape of t: [rows, cols], [cols, rows] when transposed, [cols] for a vector. */
static inline int hf_tensor_shape(const HfTensor *t, int64_t *shape)
{
    if (t->vector) {
        shape[0] = t->cols;
        return 1;
    }
    shape[0] = t->transpose ? t->cols : t->rows;
    shape[1] = t->transpose ? t->rows : t->cols;
    return 2;
}

/* Element (r, 0) of t's slice inside the flat parameters. */
static inline uint16_t *hf_slice_base(const ModelConfig *c, uint16_t *params, const HfTensor *t)
{
    ParamLayout p;
    param_layout_init(&p, c);
    uint16_t *base = params + p.offset[t->tensor];
    if (hf_per_layer(t->tensor)) base += (size_t)t->layer * (p.size[t->tensor] / (size_t)c->num_layers);
    return base + t->row0 * (size_t)t->cols;
}

/* Export: the HF tensor's values, in HF's order, into out (rows * cols). */
static inline void hf_tensor_get(const ModelConfig *c, uint16_t *params, const HfTensor *t, uint16_t *out)
{
    const uint16_t *s = hf_slice_base(c, params, t);
    const size_t R = (size_t)t->rows, K = (size_t)t->cols;
    if (!t->transpose) memcpy(out, s, R * K * sizeof(uint16_t));
    else
        for (size_t k = 0; k < K; k++)
            for (size_t r = 0; r < R; r++) out[k * R + r] = s[r * K + k];
}

/* Import: the inverse of hf_tensor_get. */
static inline void hf_tensor_put(const ModelConfig *c, uint16_t *params, const HfTensor *t, const uint16_t *in)
{
    uint16_t *s = hf_slice_base(c, params, t);
    const size_t R = (size_t)t->rows, K = (size_t)t->cols;
    if (!t->transpose) memcpy(s, in, R * K * sizeof(uint16_t));
    else
        for (size_t k = 0; k < K; k++)
            for (size_t r = 0; r < R; r++) s[r * K + k] = in[k * R + r];
}

/* ------------------------------------------------------------------ config.json */

/* The shortest decimal that reads back as the same float. */
static inline void hf_float_text(char *buf, size_t len, float v)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEni")) snprintf(buf + strlen(buf), len - strlen(buf), ".0"); /* stays a float in Python */
}

/* config.json of the model; bos_eos >= 0 names the begin/end-of-text token. */
static inline void hf_config_json(const ModelConfig *c, int bos_eos, ByteBuf *b)
{
    char eps[32], theta[32], ids[96] = "";
    hf_float_text(eps, sizeof(eps), c->norm_eps);
    hf_float_text(theta, sizeof(theta), c->rope_theta);
    if (bos_eos >= 0) snprintf(ids, sizeof(ids), "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n", bos_eos, bos_eos);
    if (c->family == MODEL_GPT2) {
        st_json_append(b, "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n");
        st_json_append(b, "  \"vocab_size\": %d,\n  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n",
                       c->vocab_size, c->max_seq_len, c->max_seq_len, c->channels);
        st_json_append(b, "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_inner\": %d,\n", c->num_layers, c->num_heads,
                       c->ffn_hidden);
        st_json_append(b, "  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": %s,\n", eps);
        st_json_append(b, "  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n  \"attn_pdrop\": 0.0,\n");
        st_json_append(b, "%s  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"bfloat16\"\n}\n", ids);
        return;
    }
    st_json_append(b, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n");
    st_json_append(b, "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n", c->vocab_size,
                   c->channels, c->ffn_hidden);
    st_json_append(b, "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n",
                   c->num_layers, c->num_heads, c->num_kv_heads);
    st_json_append(b, "  \"head_dim\": %d,\n  \"hidden_act\": \"silu\",\n  \"max_position_embeddings\": %d,\n",
                   c->head_dim, c->max_seq_len);
    st_json_append(b, "  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n", eps, theta);
    if (c->rope_scaling.factor > 0.0f) {
        char factor[32], low[32], high[32];
        hf_float_text(factor, sizeof(factor), c->rope_scaling.factor);
        hf_float_text(low, sizeof(low), c->rope_scaling.low_freq_factor);
        hf_float_text(high, sizeof(high), c->rope_scaling.high_freq_factor);
        st_json_append(b, "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %s, \"low_freq_factor\": %s, "
                          "\"high_freq_factor\": %s, \"original_max_position_embeddings\": %d},\n",
                       factor, low, high, c->rope_scaling.original_max_pos);
    } else {
        st_json_append(b, "  \"rope_scaling\": null,\n");
    }
    st_json_append(b, "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n%s", ids);
    st_json_append(b, "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"bfloat16\"\n}\n",
                   c->tied_embeddings ? "true" : "false");
}

/* Integer field `key` into *out (absent: `fallback` when >= 0, else an error). */
static inline int hf_config_int(const char *path, const JsonValue *root, const char *key, int fallback, int *out,
                                char *err)
{
    const JsonValue *v = json_get(root, key);
    uint64_t u;
    if ((!v || v->type == JSON_NULL) && fallback >= 0) {
        *out = fallback;
        return 1;
    }
    if (!v) return st_error(err, "'%s': no \"%s\"", path, key);
    if (!json_as_uint64(v, &u) || u > 100000000u) return st_error(err, "'%s': \"%s\" is not a size", path, key);
    *out = (int)u;
    return 1;
}

static inline int hf_config_float(const char *path, const JsonValue *root, const char *key, double fallback,
                                  float *out, char *err)
{
    const JsonValue *v = json_get(root, key);
    if (!v || v->type == JSON_NULL) {
        if (fallback < 0) return st_error(err, "'%s': no \"%s\"", path, key);
        *out = (float)fallback;
        return 1;
    }
    if (v->type != JSON_NUMBER) return st_error(err, "'%s': \"%s\" is not a number", path, key);
    *out = (float)v->number;
    return 1;
}

/* 1 when the boolean `key` is absent or equals `want`. */
static inline int hf_config_bool_is(const JsonValue *root, const char *key, int want)
{
    const JsonValue *v = json_get(root, key);
    return !v || v->type == JSON_NULL || (v->type == JSON_BOOL && v->boolean == want);
}

static inline const char *hf_config_string(const JsonValue *root, const char *key)
{
    const JsonValue *v = json_get(root, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}

/* The RoPE object rs ({rope_type / type, factor, ...}; NULL or null = none) into c->rope_scaling. */
static inline int hf_config_rope_scaling(const char *path, const JsonValue *rs, ModelConfig *c, char *err)
{
    if (!rs || rs->type == JSON_NULL) return 1;
    if (rs->type != JSON_OBJECT) return st_error(err, "'%s': rope_scaling is not an object", path);
    const char *type = hf_config_string(rs, "rope_type");
    if (!type) type = hf_config_string(rs, "type");
    if (type && strcmp(type, "default") == 0) return 1;
    if (!type || strcmp(type, "llama3") != 0)
        return st_error(err, "'%s': rope_scaling type '%s' is not supported (only \"llama3\" and \"default\")", path,
                        type ? type : "(none)");
    RopeScaling *s = &c->rope_scaling;
    return hf_config_float(path, rs, "factor", -1, &s->factor, err) &&
           hf_config_float(path, rs, "low_freq_factor", -1, &s->low_freq_factor, err) &&
           hf_config_float(path, rs, "high_freq_factor", -1, &s->high_freq_factor, err) &&
           hf_config_int(path, rs, "original_max_position_embeddings", -1, &s->original_max_pos, err);
}

static inline int hf_config_gpt2(const char *path, const JsonValue *root, ModelConfig *c, char *err)
{
    c->family = MODEL_GPT2;
    if (!hf_config_int(path, root, "n_layer", -1, &c->num_layers, err) ||
        !hf_config_int(path, root, "n_head", -1, &c->num_heads, err) ||
        !hf_config_int(path, root, "n_embd", -1, &c->channels, err) ||
        !hf_config_int(path, root, "n_positions", -1, &c->max_seq_len, err) ||
        !hf_config_int(path, root, "vocab_size", -1, &c->vocab_size, err) ||
        !hf_config_int(path, root, "n_inner", 4 * c->channels, &c->ffn_hidden, err) ||
        !hf_config_float(path, root, "layer_norm_epsilon", 1e-5, &c->norm_eps, err))
        return 0;
    c->num_kv_heads = c->num_heads;
    c->tied_embeddings = 1;
    c->rope_theta = 500000.0f;
    const char *act = hf_config_string(root, "activation_function");
    if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
        return st_error(err, "'%s': activation_function '%s' cannot be represented (our GPT-2 uses the tanh GELU, "
                             "gelu_new)", path, act);
    if (c->ffn_hidden != 4 * c->channels)
        return st_error(err, "'%s': n_inner %d cannot be represented (our GPT-2 model file fixes it to 4 * n_embd = %d)",
                        path, c->ffn_hidden, 4 * c->channels);
    if (c->norm_eps != 1e-5f)
        return st_error(err, "'%s': layer_norm_epsilon %g cannot be represented (our GPT-2 model file fixes 1e-5)",
                        path, (double)c->norm_eps);
    if (!hf_config_bool_is(root, "tie_word_embeddings", 1))
        return st_error(err, "'%s': an untied GPT-2 head (tie_word_embeddings false) cannot be represented", path);
    if (!hf_config_bool_is(root, "scale_attn_by_inverse_layer_idx", 0) || !hf_config_bool_is(root, "scale_attn_weights", 1))
        return st_error(err, "'%s': attention scaled other than by 1/sqrt(head size) cannot be represented", path);
    if (!hf_config_bool_is(root, "add_cross_attention", 0))
        return st_error(err, "'%s': cross-attention cannot be represented", path);
    return 1;
}

static inline int hf_config_llama(const char *path, const JsonValue *root, ModelConfig *c, char *err)
{
    c->family = MODEL_LLAMA;
    if (!hf_config_int(path, root, "num_hidden_layers", -1, &c->num_layers, err) ||
        !hf_config_int(path, root, "num_attention_heads", -1, &c->num_heads, err) ||
        !hf_config_int(path, root, "hidden_size", -1, &c->channels, err) ||
        !hf_config_int(path, root, "num_key_value_heads", c->num_heads, &c->num_kv_heads, err) ||
        !hf_config_int(path, root, "intermediate_size", -1, &c->ffn_hidden, err) ||
        !hf_config_int(path, root, "max_position_embeddings", 2048, &c->max_seq_len, err) ||
        !hf_config_int(path, root, "vocab_size", -1, &c->vocab_size, err) ||
        !hf_config_float(path, root, "rms_norm_eps", 1e-6, &c->norm_eps, err))
        return 0;
    /* transformers 5 writes rope_parameters {rope_type, rope_theta, factor, ...}; older versions
       rope_theta and rope_scaling at the top level */
    const JsonValue *rope = json_get(root, "rope_parameters");
    const int v5 = rope && rope->type == JSON_OBJECT;
    if (!hf_config_float(path, v5 ? rope : root, "rope_theta", 10000.0, &c->rope_theta, err) ||
        !hf_config_rope_scaling(path, v5 ? rope : json_get(root, "rope_scaling"), c, err))
        return 0;
    const JsonValue *tied = json_get(root, "tie_word_embeddings");
    c->tied_embeddings = tied && tied->type == JSON_BOOL && tied->boolean; /* LlamaConfig's default: untied */
    int head_dim = 0;
    if (c->num_heads > 0 && !hf_config_int(path, root, "head_dim", c->channels / c->num_heads, &head_dim, err)) return 0;
    if (c->num_heads > 0 && head_dim * c->num_heads != c->channels)
        return st_error(err, "'%s': head_dim %d with %d heads does not equal hidden_size %d: cannot be represented", path,
                        head_dim, c->num_heads, c->channels);
    const char *act = hf_config_string(root, "hidden_act");
    if (act && strcmp(act, "silu") != 0)
        return st_error(err, "'%s': hidden_act '%s' cannot be represented (our Llama MLP is SwiGLU: silu)", path, act);
    if (!hf_config_bool_is(root, "attention_bias", 0))
        return st_error(err, "'%s': attention biases (attention_bias true) cannot be represented in a Llama", path);
    if (!hf_config_bool_is(root, "mlp_bias", 0))
        return st_error(err, "'%s': MLP biases (mlp_bias true) cannot be represented in a Llama", path);
    return 1;
}

/* config.json of a gpt2 or llama folder -> *c (finished and checked), or 0 and err. */
static inline int hf_config_read(const char *path, ModelConfig *c, char *err)
{
    memset(c, 0, sizeof(*c));
    JsonValue root;
    if (!st_read_json(path, &root, err)) return 0;
    const char *type = hf_config_string(&root, "model_type");
    int ok;
    if (type && strcmp(type, "gpt2") == 0) ok = hf_config_gpt2(path, &root, c, err);
    else if (type && strcmp(type, "llama") == 0) ok = hf_config_llama(path, &root, c, err);
    else ok = st_error(err, "'%s': model_type '%s' is not supported (gpt2 or llama)", path, type ? type : "(none)");
    json_free(&root);
    if (!ok) return 0;
    if (c->num_layers < 1 || c->num_heads < 1 || c->channels % c->num_heads != 0 || c->num_kv_heads < 1 ||
        c->num_heads % c->num_kv_heads != 0 || c->vocab_size < 2 || c->ffn_hidden < 1 || c->max_seq_len < 1)
        return st_error(err, "'%s': inconsistent shape (layers %d, hidden %d, heads %d, kv heads %d, vocab %d)", path,
                        c->num_layers, c->channels, c->num_heads, c->num_kv_heads, c->vocab_size);
    const int head_dim = c->channels / c->num_heads;
    if (head_dim != 64 && head_dim != 128)
        return st_error(err, "'%s': head size %d cannot be represented (our attention kernels take 64 or 128)", path,
                        head_dim);
    model_config_finish(c, path); /* derived fields; the checks above leave it nothing to refuse */
    return 1;
}

#endif /* PACKLM_HF_MODEL_H */
