/*
 * hf_export.c — a model file (ours or llm.c's) as a Hugging Face model
 * folder that transformers' AutoModelForCausalLM.from_pretrained loads:
 * GPT2LMHeadModel for gpt2 files, LlamaForCausalLM for llama files.
 *
 *   hf_export MODEL.bin OUTDIR [--max-shard-bytes N] [--tokenizer FILE]
 *
 * OUTDIR gets config.json, model.safetensors (or shards of at most N bytes
 * each plus model.safetensors.index.json), bf16 tensors named and shaped as
 * llmc/hf_model.h lists, the padded vocabulary rows dropped. When the
 * vocabulary is the GPT-2 tokenizer's (data/gpt2_tokenizer.bin, 50257
 * tokens), also vocab.json, merges.txt and tokenizer_config.json, so
 * AutoTokenizer loads GPT2Tokenizer. Everything is written into
 * OUTDIR.tmp.PID and renamed to OUTDIR when complete; OUTDIR must not exist
 * or be empty.
 *
 * merges.txt: token id = 256 + merge rank in GPT-2's vocabulary, so the merge
 * that made token i is found by byte-pair encoding its bytes with only the
 * tokens below i: that leaves exactly two tokens, the merged pair.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "hf_model.h"
#include "safetensors.h"
#include "tokenizer.h"

static void usage(void)
{
    fprintf(stderr, "usage: hf_export MODEL.bin OUTDIR [--max-shard-bytes N] [--tokenizer data/gpt2_tokenizer.bin]\n"
                    "  a Hugging Face folder (config.json, bf16 safetensors, GPT-2 tokenizer files when the\n"
                    "  vocabulary is GPT-2's) that transformers' AutoModelForCausalLM.from_pretrained loads\n");
    exit(1);
}

/* GPT-2's printable stand-in for every byte (UTF-8 of the code point). */
static void byte_char(int byte, char *out)
{
    int printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
    int cp = byte;
    if (!printable) { /* the others take 256, 257, ... in byte order */
        cp = 256;
        for (int b = 0; b < byte; b++)
            cp += !((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF));
    }
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

/* A token's bytes in GPT-2's printable spelling, JSON-escaped when `json`. */
static void token_text(const Tokenizer *t, int id, ByteBuf *b, int json)
{
    size_t len = 0;
    const unsigned char *bytes = tokenizer_token_bytes(t, id, &len);
    for (size_t i = 0; i < len; i++) {
        char ch[4];
        byte_char(bytes[i], ch);
        if (json && (ch[0] == '"' || ch[0] == '\\')) byte_buf_push(b, '\\');
        for (char *p = ch; *p; p++) byte_buf_push(b, (unsigned char)*p);
    }
}

/* The two tokens merged into token `id`: BPE of its bytes over tokens < id. */
static void token_merge(const Tokenizer *t, int id, int *left, int *right)
{
    size_t len = 0;
    const unsigned char *bytes = tokenizer_token_bytes(t, id, &len);
    int parts[256];
    size_t start[257], n = len;
    if (len > 256) die("tokenizer: token %d is %zu bytes long (at most 256 handled)", id, len);
    for (size_t i = 0; i < len; i++) parts[i] = t->byte_token[bytes[i]], start[i] = i;
    start[len] = len;
    while (n > 2) {
        int best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int merged = tokenizer_lookup_string(t, bytes + start[i], start[i + 2] - start[i]);
            if (merged >= 0 && merged < id && (best < 0 || merged < best)) best = merged, at = i;
        }
        if (best < 0) break;
        parts[at] = best;
        for (size_t i = at + 1; i + 1 < n; i++) parts[i] = parts[i + 1], start[i] = start[i + 1];
        n--;
        start[n] = len;
    }
    if (n != 2) die("tokenizer: token %d is not one merge of two lower tokens (%zu parts)", id, n);
    *left = parts[0];
    *right = parts[1];
}

static void write_text_file(const char *dir, const char *name, const ByteBuf *b)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    AtomicFile a;
    atomic_open(&a, path);
    atomic_write(&a, b->bytes, b->len);
    atomic_commit(&a);
}

/* vocab.json, merges.txt and tokenizer_config.json of the GPT-2 tokenizer. */
static void write_tokenizer_files(const Tokenizer *t, const char *dir)
{
    ByteBuf vocab = {0}, merges = {0}, cfg = {0};
    byte_buf_push(&vocab, '{');
    for (int id = 0; id < t->vocab_size; id++) {
        if (id) byte_buf_push(&vocab, ',');
        byte_buf_push(&vocab, '"');
        token_text(t, id, &vocab, 1);
        st_json_append(&vocab, "\":%d", id);
    }
    st_json_append(&vocab, "}\n");
    st_json_append(&merges, "#version: 0.2\n");
    for (int id = 256; id < t->vocab_size; id++) {
        if (id == t->eot) continue;
        int left, right;
        token_merge(t, id, &left, &right);
        token_text(t, left, &merges, 0);
        byte_buf_push(&merges, ' ');
        token_text(t, right, &merges, 0);
        byte_buf_push(&merges, '\n');
    }
    ByteBuf eot = {0};
    token_text(t, t->eot, &eot, 1);
    byte_buf_push(&eot, 0);
    st_json_append(&cfg, "{\n  \"tokenizer_class\": \"GPT2Tokenizer\",\n  \"model_max_length\": 1024,\n");
    st_json_append(&cfg, "  \"bos_token\": \"%s\",\n  \"eos_token\": \"%s\",\n  \"unk_token\": \"%s\",\n", eot.bytes,
                   eot.bytes, eot.bytes);
    st_json_append(&cfg, "  \"add_prefix_space\": false\n}\n");
    write_text_file(dir, "vocab.json", &vocab);
    write_text_file(dir, "merges.txt", &merges);
    write_text_file(dir, "tokenizer_config.json", &cfg);
    free(vocab.bytes);
    free(merges.bytes);
    free(cfg.bytes);
    free(eot.bytes);
}

/* 1 if dir is absent; dies if it exists with anything in it. */
static int check_output_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT) die("'%s': exists and is not a directory we can read", dir);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            die("'%s': output folder exists and is not empty (holds '%s'); choose a new name", dir, e->d_name);
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) usage();
    const char *model_path = argv[1], *out_dir = argv[2], *tokenizer_path = "data/gpt2_tokenizer.bin";
    unsigned long long max_shard = 0;
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--max-shard-bytes") == 0) {
            long v = parse_long_or_die(argv[i + 1], "--max-shard-bytes");
            if (v < 1) die("--max-shard-bytes must be >= 1 (got %ld)", v);
            max_shard = (unsigned long long)v;
        } else if (strcmp(argv[i], "--tokenizer") == 0) tokenizer_path = argv[i + 1];
        else usage();
    }
    ModelConfig c;
    int version;
    checkpoint_read_model_config(model_path, &c, &version);
    ParamLayout layout;
    param_layout_init(&layout, &c);
    uint16_t *params = (uint16_t *)malloc_or_die(layout.total * sizeof(uint16_t));
    checkpoint_read_model_params(model_path, params, layout.total);
    model_config_print(&c, stdout);
    const int head = param_head_tensor(&c);
    size_t nonzero_pad = 0;
    for (size_t i = (size_t)c.vocab_size * c.channels; i < (size_t)c.padded_vocab_size * c.channels; i++)
        nonzero_pad += (params[layout.offset[head] + i] & 0x7fff) != 0;
    if (nonzero_pad)
        printf("note: %zu nonzero values in the padded vocabulary rows are dropped (they carry no token)\n", nonzero_pad);

    /* the GPT-2 tokenizer files go with a model of its vocabulary */
    Tokenizer tok;
    int with_tokenizer = 0;
    if (access(tokenizer_path, R_OK) == 0) {
        tokenizer_init(&tok, tokenizer_path);
        with_tokenizer = tok.vocab_size == c.vocab_size;
        if (!with_tokenizer) tokenizer_free(&tok);
    }

    const int dir_absent = check_output_dir(out_dir);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out_dir, (int)getpid());
    if (mkdir(tmp, 0755) != 0) die("cannot create '%s': %s", tmp, strerror(errno));

    HfTensor *map = (HfTensor *)malloc_or_die((size_t)hf_tensor_capacity(&c) * sizeof(HfTensor));
    const int n = hf_tensor_map(&c, map);
    StWriteTensor *tensors = (StWriteTensor *)calloc_or_die((size_t)n, sizeof(StWriteTensor));
    for (int i = 0; i < n; i++) {
        uint16_t *data = (uint16_t *)malloc_or_die((size_t)map[i].rows * map[i].cols * sizeof(uint16_t));
        hf_tensor_get(&c, params, &map[i], data);
        tensors[i] = (StWriteTensor){map[i].name, ST_BF16, 0, {0}, data};
        tensors[i].ndim = hf_tensor_shape(&map[i], tensors[i].shape);
    }
    const int shards = st_write_sharded(tmp, tensors, n, max_shard);
    ByteBuf config = {0};
    hf_config_json(&c, with_tokenizer ? tok.eot : -1, &config);
    write_text_file(tmp, "config.json", &config);
    if (with_tokenizer) write_tokenizer_files(&tok, tmp);

    if (!dir_absent && rmdir(out_dir) != 0) die("cannot replace the empty folder '%s': %s", out_dir, strerror(errno));
    if (rename(tmp, out_dir) != 0) die("cannot rename '%s' to '%s': %s", tmp, out_dir, strerror(errno));
    printf("wrote %s: %d tensors in %d safetensors file%s (bf16), config.json (%s)%s\n", out_dir, n, shards,
           shards == 1 ? "" : "s", c.family == MODEL_GPT2 ? "GPT2LMHeadModel" : "LlamaForCausalLM",
           with_tokenizer ? ", GPT-2 tokenizer files" : "");
    for (int i = 0; i < n; i++) free((void *)tensors[i].data);
    free(tensors);
    free(map);
    free(config.bytes);
    free(params);
    if (with_tokenizer) tokenizer_free(&tok);
    return 0;
}
