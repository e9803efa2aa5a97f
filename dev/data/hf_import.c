/*
 * hf_import.c — a Hugging Face GPT-2 or Llama folder as our model file
 * (bf16, version 5), the reverse of hf_export.
 *
 *   hf_import HF_DIR MODEL.bin
 *
 * Reads HF_DIR/config.json (llmc/hf_model.h says what is accepted) and
 * model.safetensors or model.safetensors.index.json + shards; F32, BF16 and
 * F16 tensors (F32 / F16 rounded to nearest-even bf16). GPT-2 names are
 * accepted with or without the "transformer." prefix (GPT2LMHeadModel /
 * GPT2Model); the attention-mask buffers GPT-2 files may hold (attn.bias,
 * attn.masked_bias) and Llama's rotary_emb.inv_freq are recomputed, not read.
 * Every other tensor must be used: what we cannot represent (a bias in a
 * Llama, an untied head that differs from the embedding of a tied model, ...)
 * is refused by name, nothing is written, and the exit code is 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "hf_model.h"
#include "safetensors.h"

static void fail(const char *err)
{
    die("%s", err);
}

/* Our name, or GPT2Model's (no "transformer." prefix). */
static StTensor *find_tensor(const StModel *m, const ModelConfig *c, const char *name, const StFile **file)
{
    StTensor *t = st_model_find(m, name, file);
    if (!t && c->family == MODEL_GPT2 && strncmp(name, "transformer.", 12) == 0) t = st_model_find(m, name + 12, file);
    return t;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Why a tensor we did not use cannot be represented. */
static const char *unused_reason(const ModelConfig *c, const char *name)
{
    if (c->family == MODEL_LLAMA && ends_with(name, ".bias"))
        return strstr(name, "self_attn") ? "attention biases cannot be represented in a Llama"
                                         : "biases cannot be represented in a Llama";
    if (strstr(name, "lm_head")) return "a head that differs from the token embedding cannot be represented in a tied model";
    return "not part of a GPT-2 / Llama model as we represent it";
}

/* GPT-2's causal-mask buffers and Llama's rotary table: derived, never read. */
static int is_derived_buffer(const char *name)
{
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") || ends_with(name, "rotary_emb.inv_freq");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hf_import HF_DIR MODEL.bin\n"
                        "  a Hugging Face GPT-2 / Llama folder (config.json + safetensors, single or sharded,\n"
                        "  F32/BF16/F16) as a packlm model file (bf16)\n");
        return 1;
    }
    const char *dir = argv[1], *out_path = argv[2];
    char err[ST_ERR_LEN], config_path[4200];
    snprintf(config_path, sizeof(config_path), "%s/config.json", dir);
    ModelConfig c;
    if (!hf_config_read(config_path, &c, err)) fail(err);
    model_config_print(&c, stdout);
    StModel m;
    if (!st_model_open(dir, &m, err)) fail(err);

    ParamLayout layout;
    param_layout_init(&layout, &c);
    uint16_t *params = (uint16_t *)calloc_or_die(layout.total, sizeof(uint16_t)); /* padded rows stay 0 */
    HfTensor *map = (HfTensor *)malloc_or_die((size_t)hf_tensor_capacity(&c) * sizeof(HfTensor));
    const int n = hf_tensor_map(&c, map);
    uint16_t *buf = NULL;
    size_t buf_len = 0;
    for (int i = 0; i < n; i++) {
        const StFile *file = NULL;
        StTensor *t = find_tensor(&m, &c, map[i].name, &file);
        if (!t) die("'%s': tensor '%s' is missing", dir, map[i].name);
        const size_t count = (size_t)map[i].rows * map[i].cols;
        if (count > buf_len) {
            free(buf);
            buf = (uint16_t *)malloc_or_die(count * sizeof(uint16_t));
            buf_len = count;
        }
        int64_t shape[2];
        const int ndim = hf_tensor_shape(&map[i], shape);
        if (!st_tensor_read_bf16(file, t, shape, ndim, buf, err)) fail(err);
        hf_tensor_put(&c, params, &map[i], buf);
        t->used = 1;
    }
    /* a tied model's file may still carry lm_head.weight: fine when it equals the embedding */
    const StFile *head_file = NULL;
    StTensor *head = c.tied_embeddings ? st_model_find(&m, "lm_head.weight", &head_file) : NULL;
    if (head) {
        const int64_t shape[2] = {c.vocab_size, c.channels};
        const size_t count = (size_t)c.vocab_size * c.channels;
        uint16_t *h = (uint16_t *)malloc_or_die(count * sizeof(uint16_t));
        if (!st_tensor_read_bf16(head_file, head, shape, 2, h, err)) fail(err);
        head->used = memcmp(h, params + layout.offset[PARAM_WTE], count * sizeof(uint16_t)) == 0;
        free(h);
    }
    for (int f = 0; f < m.num_files; f++)
        for (int i = 0; i < m.files[f].num_tensors; i++) {
            const StTensor *t = &m.files[f].tensors[i];
            if (!t->used && !is_derived_buffer(t->name))
                die("'%s': tensor '%s' refused: %s", m.files[f].path, t->name, unused_reason(&c, t->name));
        }
    const uint64_t hash = checkpoint_write_model(out_path, &c, params, layout.total);
    printf("wrote %s: %zu parameters (bf16) from %d tensors in %d safetensors file%s (hash %016llx)\n", out_path,
           layout.total, n, m.num_files, m.num_files == 1 ? "" : "s", (unsigned long long)hash);
    st_model_close(&m);
    free(buf);
    free(map);
    free(params);
    return 0;
}
