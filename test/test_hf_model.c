/*
 * test_hf_model.c — the safetensors reader/writer (llmc/safetensors.h) and
 * the Hugging Face mapping (llmc/hf_model.h) on the CPU:
 *   - the HF tensors of each family cover every parameter exactly once
 *     (padded vocabulary rows: never), and get/put are inverses;
 *   - st_write then st_open gives the tensors back; F32 / F16 read as bf16;
 *   - malformed files are refused with a message naming file and tensor;
 *   - config.json written by hf_config_json reads back to the same config,
 *     and configurations we cannot represent are refused by name.
 *
 * With --write-models DIR it instead writes the model files that
 * test/test_hf_roundtrip.sh exports and imports (random bf16 values, padded
 * rows zero) and a Llama folder with an attention bias that must be refused.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "hf_model.h"
#include "rand.h"
#include "safetensors.h"
#include "test.h"

static const char *const MODELS[][2] = {
    {"gpt2_small", "gpt2:d2,C=128,NH=2,V=300,T=32"},
    {"gpt2_vocab", "gpt2:d1,C=64,NH=1,T=16"}, /* the GPT-2 vocabulary: tokenizer files */
    {"llama_gqa_llama3", "llama:1B,L=2,C=128,NH=2,NKV=1,F=96,V=300,T=64,tied=1,llama3=8/1/4/32"},
    {"llama_untied", "llama:1B,L=2,C=256,NH=2,NKV=2,F=160,V=200,T=64,tied=0,theta=10000"},
};
#define NUM_MODELS (int)(sizeof(MODELS) / sizeof(MODELS[0]))

/* Random bf16 parameters (normal, std 0.5), padded vocabulary rows zero. */
static uint16_t *random_params(const ModelConfig *c, const ParamLayout *p, unsigned long long seed)
{
    uint16_t *w = (uint16_t *)malloc_or_die(p->total * sizeof(uint16_t));
    Rng rng = rng_create(seed);
    for (size_t i = 0; i < p->total; i++) w[i] = bf16_bits_from_float((float)(0.5 * rng_normal(&rng)));
    const size_t real = (size_t)c->vocab_size * c->channels, padded = (size_t)c->padded_vocab_size * c->channels;
    memset(w + p->offset[PARAM_WTE] + real, 0, (padded - real) * sizeof(uint16_t));
    if (p->size[PARAM_LM_HEAD]) memset(w + p->offset[PARAM_LM_HEAD] + real, 0, (padded - real) * sizeof(uint16_t));
    return w;
}

static void check_coverage(const char *label, const char *descriptor)
{
    ModelConfig c;
    model_config_parse(&c, descriptor);
    ParamLayout p;
    param_layout_init(&p, &c);
    /* how many HF tensors each parameter lands in */
    unsigned char *count = (unsigned char *)calloc_or_die(p.total, 1);
    HfTensor *map = (HfTensor *)malloc_or_die((size_t)hf_tensor_capacity(&c) * sizeof(HfTensor));
    const int n = hf_tensor_map(&c, map);
    uint16_t *index = (uint16_t *)calloc_or_die(p.total, sizeof(uint16_t)), *scratch = NULL;
    size_t bad_roundtrip = 0;
    for (int t = 0; t < n; t++) {
        const size_t k = (size_t)map[t].rows * map[t].cols;
        /* mark the slice through put: write ones, find them */
        uint16_t *ones = (uint16_t *)malloc_or_die(k * sizeof(uint16_t));
        for (size_t i = 0; i < k; i++) ones[i] = 1;
        memset(index, 0, p.total * sizeof(uint16_t));
        hf_tensor_put(&c, index, &map[t], ones);
        for (size_t i = 0; i < p.total; i++) count[i] += index[i];
        /* get(put(x)) == x for a distinct pattern */
        for (size_t i = 0; i < k; i++) ones[i] = (uint16_t)(i * 7919u + 13u);
        hf_tensor_put(&c, index, &map[t], ones);
        scratch = (uint16_t *)realloc(scratch, k * sizeof(uint16_t));
        hf_tensor_get(&c, index, &map[t], scratch);
        bad_roundtrip += memcmp(scratch, ones, k * sizeof(uint16_t)) != 0;
        free(ones);
    }
    size_t wrong = 0;
    const size_t real = (size_t)c.vocab_size * c.channels, padded = (size_t)c.padded_vocab_size * c.channels;
    for (size_t i = 0; i < p.total; i++) {
        const int head_pad = (i >= p.offset[PARAM_WTE] + real && i < p.offset[PARAM_WTE] + padded) ||
                             (p.size[PARAM_LM_HEAD] && i >= p.offset[PARAM_LM_HEAD] + real);
        wrong += count[i] != (head_pad ? 0 : 1);
    }
    char name[160];
    snprintf(name, sizeof(name), "hf map %s: every parameter in exactly one HF tensor, padded rows in none", label);
    check(wrong == 0, name, "%zu of %zu parameters wrong", wrong, p.total);
    snprintf(name, sizeof(name), "hf map %s: get(put(x)) == x for all %d tensors", label, n);
    check(bad_roundtrip == 0, name, "%zu tensors differ", bad_roundtrip);
    free(count);
    free(map);
    free(index);
    free(scratch);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen_or_die(path, "wb");
    fwrite_or_die(data, 1, n, f, path);
    fclose_or_die(f, path);
}

static void check_write_read(void)
{
    const float f32[3] = {1.5f, -2.25f, 3.0e-3f};
    const uint16_t f16[4] = {0x3c00 /* 1 */, 0xc000 /* -2 */, 0x0001 /* 2^-24 */, 0x7bff /* 65504 */};
    const float f16_want[4] = {1.0f, -2.0f, 5.9604645e-08f, 65504.0f};
    const uint16_t bf16[6] = {0x3f80, 0x4000, 0xbf80, 0x0000, 0x7f80, 0x3e00};
    StWriteTensor w[3] = {{"a.f32", ST_F32, 1, {3}, f32}, {"b.f16", ST_F16, 2, {2, 2}, f16},
                          {"c \"quoted\" bf16", ST_BF16, 2, {3, 2}, bf16}};
    const char *path = "build/test_hf_model.safetensors";
    st_write(path, w, 3);
    StFile f;
    char err[ST_ERR_LEN] = "";
    const int opened = st_open(path, &f, err);
    check(opened && f.num_tensors == 3, "safetensors: written file reads back (3 tensors)", "%s", err);
    if (!opened) return;
    uint16_t out[6];
    int ok = 1;
    const StTensor *a = st_file_find(&f, "a.f32"), *b = st_file_find(&f, "b.f16"), *cq = st_file_find(&f, "c \"quoted\" bf16");
    ok = a && b && cq && a->dtype == ST_F32 && b->dtype == ST_F16 && cq->dtype == ST_BF16 && cq->shape[0] == 3;
    ok = ok && st_tensor_read_bf16(&f, a, (int64_t[]){3}, 1, out, err);
    for (int i = 0; ok && i < 3; i++) ok = out[i] == bf16_bits_from_float(f32[i]);
    ok = ok && st_tensor_read_bf16(&f, b, (int64_t[]){2, 2}, 2, out, err);
    for (int i = 0; ok && i < 4; i++) ok = out[i] == bf16_bits_from_float(f16_want[i]);
    ok = ok && st_tensor_read_bf16(&f, cq, (int64_t[]){3, 2}, 2, out, err);
    ok = ok && memcmp(out, bf16, sizeof(bf16)) == 0;
    check(ok, "safetensors: F32 / F16 / BF16 values and names (escaped quotes) read back", "%s", err);
    ok = !st_tensor_read_bf16(&f, cq, (int64_t[]){2, 3}, 2, out, err) &&
         strstr(err, "'c \"quoted\" bf16' has shape [3, 2], expected [2, 3]") && strstr(err, path);
    check(ok, "safetensors: a shape mismatch is refused naming file and tensor", "message: %s", err);
    st_close(&f);
    remove(path);
}

/* A file of one tensor "w" whose header is `json` (data: `data_bytes` zero bytes). */
static int parse_header(const char *json, size_t data_bytes, char *err)
{
    const size_t n = strlen(json);
    unsigned char *bytes = (unsigned char *)calloc_or_die(8 + n + data_bytes, 1);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(bytes + 8, json, n);
    StFile f;
    const int ok = st_parse(bytes, 8 + n + data_bytes, "bad.safetensors", &f, err);
    if (ok) st_file_free(&f);
    free(bytes);
    return ok;
}

static void check_malformed(void)
{
    const struct { const char *what, *json; size_t data; const char *message; } cases[] = {
        {"offsets outside the file", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
         "'w': data_offsets end 16 is outside the file"},
        {"dtype/shape mismatch with the byte count", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
         "'w': data_offsets [0, 16] hold 16 bytes, but BF16 of this shape needs 8"},
        {"overlapping tensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                                "\"v\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6, "(overlap)"},
        {"bytes after the last tensor", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 5,
         "3 bytes after the last tensor"},
        {"an unknown dtype", "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "'w': unknown dtype 'F12'"},
        {"a header that is not JSON", "{\"w\":{\"dtype\":\"F32\",", 0, "header is not valid JSON"},
        {"a negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "'w': shape[0] is not a size"},
        {"a repeated tensor name", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                   "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "'w' appears twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[ST_ERR_LEN] = "", name[160];
        const int accepted = parse_header(cases[i].json, cases[i].data, err);
        snprintf(name, sizeof(name), "safetensors: refuses %s", cases[i].what);
        check(!accepted && strstr(err, "'bad.safetensors'") && strstr(err, cases[i].message), name,
              "accepted=%d message: %s", accepted, err);
    }
    /* a header length beyond the file */
    unsigned char bytes[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    StFile f;
    char err[ST_ERR_LEN] = "";
    check(!st_parse(bytes, sizeof(bytes), "bad.safetensors", &f, err) && strstr(err, "header length 65535"),
          "safetensors: refuses a header length larger than the file", "message: %s", err);
    /* an integer tensor cannot be read as weights */
    char err2[ST_ERR_LEN] = "";
    const char *json = "{\"w\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    unsigned char file[128] = {0};
    const size_t n = strlen(json);
    file[0] = (unsigned char)n;
    memcpy(file + 8, json, n);
    uint16_t out[2];
    const int parsed = st_parse(file, 8 + n + 4, "ints.safetensors", &f, err2);
    check(parsed && !st_tensor_read_bf16(&f, &f.tensors[0], (int64_t[]){1}, 1, out, err2) &&
              strstr(err2, "'w' is I32; only F32, BF16 and F16"),
          "safetensors: refuses to read an I32 tensor as weights, naming it", "message: %s", err2);
    if (parsed) st_file_free(&f);
}

static void check_config_roundtrip(const char *label, const char *descriptor)
{
    ModelConfig c, back;
    model_config_parse(&c, descriptor);
    ByteBuf json = {0};
    hf_config_json(&c, 50256, &json);
    write_bytes("build/test_hf_config.json", json.bytes, json.len);
    free(json.bytes);
    char err[ST_ERR_LEN] = "", name[160];
    const int ok = hf_config_read("build/test_hf_config.json", &back, err);
    snprintf(name, sizeof(name), "hf config.json %s: written, read back to the same config", label);
    check(ok && memcmp(&c, &back, sizeof(c)) == 0, name, "%s", ok ? "fields differ" : err);
}

/* transformers 5 nests rope_theta and the scaling in rope_parameters */
static void check_config_rope_parameters(void)
{
    const char *text = "{\"model_type\":\"llama\",\"hidden_size\":128,\"intermediate_size\":64,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":2,\"vocab_size\":300,\"rms_norm_eps\":1e-5,\"rope_parameters\":"
                       "{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,\"low_freq_factor\":1.0,"
                       "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}";
    write_bytes("build/test_hf_config.json", text, strlen(text));
    ModelConfig c;
    char err[ST_ERR_LEN] = "";
    const int ok = hf_config_read("build/test_hf_config.json", &c, err);
    check(ok && c.rope_theta == 500000.0f && c.rope_scaling.factor == 8.0f && c.rope_scaling.original_max_pos == 8192,
          "hf config.json: transformers 5 rope_parameters (theta + llama3 scaling) read", "%s", ok ? "fields" : err);
}

static void check_config_refusals(void)
{
    const char *llama = "\"model_type\":\"llama\",\"hidden_size\":128,\"intermediate_size\":64,\"num_hidden_layers\":1,"
                        "\"vocab_size\":300,\"rms_norm_eps\":1e-5";
    const struct { const char *what, *extra, *message; } cases[] = {
        {"attention biases in a Llama", ",\"num_attention_heads\":2,\"attention_bias\":true", "attention biases"},
        {"MLP biases in a Llama", ",\"num_attention_heads\":2,\"mlp_bias\":true", "MLP biases"},
        {"a yarn rope_scaling", ",\"num_attention_heads\":2,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}",
         "rope_scaling type 'yarn' is not supported"},
        {"head size 32", ",\"num_attention_heads\":4", "head size 32 cannot be represented"},
        {"a head_dim that does not divide hidden_size", ",\"num_attention_heads\":2,\"head_dim\":128", "head_dim 128"},
        {"a gelu Llama", ",\"num_attention_heads\":2,\"hidden_act\":\"gelu\"", "hidden_act 'gelu'"},
        {"a linear rope_parameters (transformers 5 spelling)",
         ",\"num_attention_heads\":2,\"rope_parameters\":{\"rope_type\":\"linear\",\"rope_theta\":10000.0}",
         "rope_scaling type 'linear' is not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024], err[ST_ERR_LEN] = "", name[160];
        snprintf(text, sizeof(text), "{%s%s}", llama, cases[i].extra);
        write_bytes("build/test_hf_config.json", text, strlen(text));
        ModelConfig c;
        const int ok = hf_config_read("build/test_hf_config.json", &c, err);
        snprintf(name, sizeof(name), "hf config.json: refuses %s by name", cases[i].what);
        check(!ok && strstr(err, cases[i].message) && strstr(err, "build/test_hf_config.json"), name, "message: %s", err);
    }
    const struct { const char *what, *text, *message; } others[] = {
        {"model_type mistral", "{\"model_type\":\"mistral\"}", "model_type 'mistral' is not supported"},
        {"an untied GPT-2", "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":64,\"n_positions\":8,"
                            "\"vocab_size\":50,\"tie_word_embeddings\":false}", "untied GPT-2 head"},
        {"a relu GPT-2", "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":64,\"n_positions\":8,"
                         "\"vocab_size\":50,\"activation_function\":\"relu\"}", "activation_function 'relu'"},
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        char err[ST_ERR_LEN] = "", name[160];
        write_bytes("build/test_hf_config.json", others[i].text, strlen(others[i].text));
        ModelConfig c;
        const int ok = hf_config_read("build/test_hf_config.json", &c, err);
        snprintf(name, sizeof(name), "hf config.json: refuses %s by name", others[i].what);
        check(!ok && strstr(err, others[i].message), name, "message: %s", err);
    }
    remove("build/test_hf_config.json");
}

/* The model files (and one folder to refuse) for test_hf_roundtrip.sh. */
static int write_models(const char *dir)
{
    char path[4200];
    for (int i = 0; i < NUM_MODELS; i++) {
        ModelConfig c;
        model_config_parse(&c, MODELS[i][1]);
        ParamLayout p;
        param_layout_init(&p, &c);
        uint16_t *w = random_params(&c, &p, 100 + (unsigned long long)i);
        snprintf(path, sizeof(path), "%s/%s.bin", dir, MODELS[i][0]);
        checkpoint_write_model(path, &c, w, p.total);
        printf("%s\n", path);
        free(w);
    }
    /* a Llama folder with a q_proj bias, which we cannot represent */
    ModelConfig c;
    model_config_parse(&c, MODELS[2][1]);
    ParamLayout p;
    param_layout_init(&p, &c);
    uint16_t *w = random_params(&c, &p, 7);
    HfTensor *map = (HfTensor *)malloc_or_die((size_t)hf_tensor_capacity(&c) * sizeof(HfTensor));
    const int n = hf_tensor_map(&c, map);
    StWriteTensor *t = (StWriteTensor *)calloc_or_die((size_t)n + 1, sizeof(StWriteTensor));
    for (int i = 0; i < n; i++) {
        uint16_t *data = (uint16_t *)malloc_or_die((size_t)map[i].rows * map[i].cols * sizeof(uint16_t));
        hf_tensor_get(&c, w, &map[i], data);
        t[i] = (StWriteTensor){map[i].name, ST_BF16, 0, {0}, data};
        t[i].ndim = hf_tensor_shape(&map[i], t[i].shape);
    }
    static const uint16_t bias[128] = {0};
    t[n] = (StWriteTensor){"model.layers.0.self_attn.q_proj.bias", ST_BF16, 1, {128}, bias};
    snprintf(path, sizeof(path), "%s/llama_with_bias", dir);
    mkdir(path, 0755);
    st_write_sharded(path, t, n + 1, 0);
    ByteBuf json = {0};
    hf_config_json(&c, -1, &json);
    snprintf(path, sizeof(path), "%s/llama_with_bias/config.json", dir);
    write_bytes(path, json.bytes, json.len);
    for (int i = 0; i < n; i++) free((void *)t[i].data);
    free(t);
    free(map);
    free(w);
    free(json.bytes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-models") == 0) return write_models(argv[2]);
    mkdir("build", 0755);
    for (int i = 0; i < NUM_MODELS; i++) check_coverage(MODELS[i][0], MODELS[i][1]);
    check_write_read();
    check_malformed();
    for (int i = 0; i < NUM_MODELS; i++) check_config_roundtrip(MODELS[i][0], MODELS[i][1]);
    check_config_rope_parameters();
    check_config_refusals();
    return test_summary();
}
