/*
 * test_trainer_host.c — the trainer's host-side modules, on the CPU:
 *   train_config.h  defaults parse; each bad or contradictory flag gives a
 *                   message naming it and quoting its value as typed; -d and
 *                   B*T give the accumulation steps; one table for both
 *                   trainers: a GPU-only flag is refused by train_cpu by name,
 *                   and each trainer's --help lists exactly its flags
 *   mfu.h           peak table (known cards, unknown = -1); the matmul FLOPs
 *                   equal those counted from the params.h tensor sizes;
 *                   attended pairs of a packed batch
 *   checkpoint.h    model file: llm.c header fields, bf16 round trip, fp32
 *                   files read as bf16; state file round trip; a truncated or
 *                   bit-flipped state fails its checksum; keep-last-K pruning
 *   logger.h        llm.c line format; a resumed log keeps only earlier steps
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "checkpoint.h"
#include "logger.h"
#include "mfu.h"
#include "test.h"
#include "train_config.h"

static const char *parse_for(Trainer trainer, TrainConfig *c, const char *line, char *err, size_t len)
{
    char buf[512], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof(buf), "train_gpt %s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    return train_config_parse(c, trainer, argc, argv, err, len);
}

static const char *parse(TrainConfig *c, const char *line, char *err, size_t len)
{
    return parse_for(TRAINER_GPU, c, line, err, len);
}

static void expect_error_for(Trainer trainer, const char *line, const char *needle)
{
    TrainConfig c;
    char err[512], name[160];
    const char *r = parse_for(trainer, &c, line, err, sizeof(err));
    snprintf(name, sizeof(name), "config_rejects[%s] '%s'", trainer_name(trainer), line);
    check(r && strstr(r, needle) != NULL, name, "got '%s', expected a message containing '%s'", r ? r : "(accepted)",
          needle);
}

static void expect_error(const char *line, const char *needle) { expect_error_for(TRAINER_GPU, line, needle); }

static void test_config(void)
{
    TrainConfig c;
    char err[512];
    check(parse(&c, "", err, sizeof(err)) == NULL && c.B == 16 && c.T == 1024 && !strcmp(c.model, "gpt2:d12"),
          "config_defaults_parse", "defaults rejected or wrong");
    const char *r = parse(&c, "-b 8 -t 512 -d 16384 -e llama:1B --packing chunk --doc-mask 0 -l 1e-3", err, sizeof(err));
    check(r == NULL && c.B == 8 && c.T == 512 && c.total_batch_tokens == 16384 && !c.doc_mask && c.lr == 1e-3f &&
              !strcmp(c.packing, "chunk") && train_config_grad_accum(&c, 1) == 4 && train_config_grad_accum(&c, 2) == 2,
          "config_flags_and_grad_accum", "%s", r ? r : "values differ");
    r = parse(&c, "--help", err, sizeof(err));
    check(r && !strcmp(r, "help"), "config_help", "--help not recognised");
    expect_error("-q", "needs a value");
    expect_error("--frobnicate 1", "unknown flag '--frobnicate'");
    expect_error("-b x", "flag -b: 'x' is not an integer");
    expect_error("-b 0", "flag -b: 0 is out of range");
    expect_error("-l abc", "flag -l: 'abc' is not a number");
    expect_error("-k sawtooth", "unknown schedule 'sawtooth'");
    expect_error("--packing zigzag", "unknown strategy 'zigzag'");
    expect_error("-b 4 -t 100 -d 1000", "not a multiple of B*T");
    expect_error("-y 1", "no -o was given");
    expect_error("-n 100", "no -o DIR");
    check(parse(&c, "-r 2", err, sizeof(err)) == NULL && c.recompute == 2, "config_recompute_2_accepted", "-r 2 refused");
    expect_error("-r 3", "flag -r: 3 is out of range");
    expect_error("-x 10 -u 11", "more warmup steps than steps");
    check(parse(&c, "-x 20", err, sizeof(err)) == NULL && c.warmup_steps == 2 &&
              parse(&c, "-x 5000", err, sizeof(err)) == NULL && c.warmup_steps == 50,
          "config_default_warmup_fits_short_runs", "warmup %d", c.warmup_steps);
    expect_error("--doc-mask 2", "flag --doc-mask: 2 is out of range");
    /* out-of-range values quoted as typed, never wrapped, in both trainers */
    expect_error("-b 4294967297", "flag -b: 4294967297 is out of range [1, 1048576]");
    expect_error("-n 4294967298", "flag -n: 4294967298 is out of range [0, 1000000000]");
    expect_error_for(TRAINER_CPU, "-b 4294967297", "flag -b: 4294967297 is out of range");
    expect_error_for(TRAINER_CPU, "-x 4294967298", "flag -x: 4294967298 is out of range");
    expect_error("-d 99999999999999999999", "flag -d: 99999999999999999999 is out of range");
    expect_error("-l inf", "flag -l: inf is out of range");
    expect_error("-l nan", "flag -l: 'nan' is not a number");
    /* one table: GPU-only flags refused by train_cpu by name; the same flag, the same field */
    expect_error_for(TRAINER_CPU, "-s 10", "flag -s (print a sample every N steps, 0 = never) is not supported by "
                                           "train_cpu, only by train_gpt");
    expect_error_for(TRAINER_CPU, "--check", "flag --check");
    expect_error_for(TRAINER_CPU, "-z 1", "is not supported by train_cpu");
    TrainConfig g, cpu;
    const char *rg = parse_for(TRAINER_GPU, &g, "-x 30 -n 10 -o out --seed 7 -d 0", err, sizeof(err));
    const char *rc = parse_for(TRAINER_CPU, &cpu, "-x 30 -n 10 -o out --seed 7 -d 0", err, sizeof(err));
    check(!rg && !rc && g.max_steps == 30 && cpu.max_steps == 30 && g.checkpoint_every == 10 &&
              cpu.checkpoint_every == 10 && g.seed == 7 && cpu.seed == 7 && train_config_grad_accum(&g, 1) == 1 &&
              train_config_grad_accum(&cpu, 1) == 1,
          "config_same_flag_same_meaning", "-x / -n / --seed / -d 0 read differently by the two trainers");
    check(parse(&c, "--check", err, sizeof(err)) == NULL && c.check_only == 1, "config_check_switch",
          "--check not read as a switch");
}

/* Each trainer's --help: every flag it takes, with a default; none it does not take. */
static void test_help(void)
{
    for (int t = TRAINER_GPU; t <= TRAINER_CPU; t++) {
        char *text = NULL, name[64];
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        train_config_print_help(out, (Trainer)t);
        fclose(out);
        int ok = 1;
        for (size_t k = 0; k < TRAIN_NUM_FLAGS; k++) {
            char line[64];
            snprintf(line, sizeof(line), "\n  %s ", TRAIN_FLAGS[k].flag);
            const int listed = strstr(text, line) != NULL;
            ok &= listed == ((TRAIN_FLAGS[k].trainers & (unsigned)t) != 0);
        }
        ok &= strstr(text, "\n  -x N ") && strstr(text, " optimizer steps (default ") != NULL;
        snprintf(name, sizeof(name), "config_help_lists_its_flags[%s]", trainer_name((Trainer)t));
        check(ok, name, "help text:\n%s", text);
        free(text);
    }
}

static void test_mfu(void)
{
    check(gpu_peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0 && gpu_peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0 &&
              gpu_peak_bf16_tflops("NVIDIA H200") == 989.0 && gpu_peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312.0,
          "mfu_peak_table", "a known card has the wrong peak");
    check(gpu_peak_bf16_tflops("NVIDIA GeForce RTX 4090") < 0, "mfu_unknown_card", "unknown card got a peak");
    const char *models[] = {"gpt2:d12", "llama:1B", "llama:1B,L=2,C=256,NH=4,NKV=2,F=512,tied=0"};
    for (int i = 0; i < 3; i++) {
        ModelConfig c;
        model_config_parse(&c, models[i]);
        ParamLayout p;
        param_layout_init(&p, &c);
        /* the same count from the tensor sizes: every weight matrix but the embeddings, plus the head */
        double from_layout = p.size[PARAM_QKVW] + p.size[PARAM_ATTPROJW] + p.size[PARAM_FCW] + p.size[PARAM_FCPROJW] +
                             (double)c.padded_vocab_size * c.channels;
        char name[96];
        snprintf(name, sizeof(name), "mfu_matmul_params_%s", models[i]);
        check(model_matmul_params(&c) == from_layout, name, "%.0f != %.0f", model_matmul_params(&c), from_layout);
    }
    PackedBatch b;
    packed_batch_alloc(&b, 2, 8);
    int cu[] = {0, 3, 8, 9, 16};
    memcpy(b.cu_seqlens, cu, sizeof(cu));
    b.num_segments = 4;
    double pairs = 0;
    for (int s = 0; s < 4; s++)
        for (int q = cu[s]; q < cu[s + 1]; q++) pairs += q - cu[s] + 1; /* keys q attends to */
    check(batch_attended_pairs(&b) == pairs, "mfu_attended_pairs", "%.0f != %.0f", batch_attended_pairs(&b), pairs);
    packed_batch_free(&b);
}

static void test_model_file(const char *dir)
{
    ModelConfig c, back;
    model_config_parse(&c, "llama:1B,L=2,C=64,NH=2,NKV=1,F=96,V=300,T=32,tied=0,theta=10000");
    ParamLayout p;
    param_layout_init(&p, &c);
    uint16_t *bits = (uint16_t *)malloc_or_die(p.total * sizeof(uint16_t));
    uint16_t *read = (uint16_t *)malloc_or_die(p.total * sizeof(uint16_t));
    for (size_t i = 0; i < p.total; i++) bits[i] = bf16_bits_from_float(sinf((float)i));
    char path[512];
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    uint64_t written = checkpoint_write_model(path, &c, bits, p.total);
    int version;
    checkpoint_read_model_config(path, &back, &version);
    check(version == MODEL_VERSION_BF16 && back.family == MODEL_LLAMA && back.num_kv_heads == 1 &&
              back.ffn_hidden == 96 && back.rope_theta == 10000.0f && !back.tied_embeddings && back.vocab_size == 300,
          "model_file_llama_header_round_trip", "config differs after reading back");
    uint64_t hash = checkpoint_read_model_params(path, read, p.total);
    check(hash == written && memcmp(bits, read, p.total * 2) == 0, "model_file_bf16_round_trip", "params differ");

    /* an fp32 gpt2 file laid out as llm.c writes it */
    model_config_parse(&c, "gpt2:d2,C=64,NH=2,V=300,T=32");
    param_layout_init(&p, &c);
    int h[256] = {MODEL_MAGIC_GPT2, MODEL_VERSION_FP32, 32, 300, 2, 2, 64, 384};
    float *w = (float *)malloc_or_die(p.total * sizeof(float));
    for (size_t i = 0; i < p.total; i++) w[i] = cosf((float)i) * 0.1f;
    FILE *f = fopen_or_die(path, "wb");
    fwrite(h, sizeof(int), 256, f);
    fwrite(w, sizeof(float), p.total, f);
    fclose(f);
    checkpoint_read_model_config(path, &back, &version);
    uint16_t *b2 = (uint16_t *)malloc_or_die(p.total * sizeof(uint16_t));
    checkpoint_read_model_params(path, b2, p.total);
    double worst = 0;
    for (size_t i = 0; i < p.total; i++) {
        double rel = fabs(float_from_bf16_bits(b2[i]) - w[i]) / fmax(fabs(w[i]), 1e-30);
        if (rel > worst) worst = rel;
    }
    check(back.family == MODEL_GPT2 && back.padded_vocab_size == 384 && version == MODEL_VERSION_FP32 &&
              worst <= 1.0 / 256,
          "model_file_llmc_fp32_reads_as_bf16", "worst relative rounding %.3g (bound 2^-8)", worst);
    /* and what we write has llm.c's header */
    checkpoint_write_model(path, &c, b2, p.total);
    f = fopen_or_die(path, "rb");
    int got[256];
    fread_or_die(got, sizeof(int), 256, f, path);
    fclose(f);
    h[1] = MODEL_VERSION_BF16;
    check(memcmp(got, h, sizeof(h)) == 0, "model_file_gpt2_llmc_header", "header ints differ from llm.c's");
    free(bits);
    free(read);
    free(w);
    free(b2);
}

static void test_state_file(const char *dir)
{
    enum { S = 1000 };
    float *opt = (float *)malloc_or_die(6 * S * sizeof(float));
    for (int i = 0; i < 3 * S; i++) opt[i] = (float)i * 0.5f - 7.0f;
    char loader[40] = "loader state bytes", loader_back[40];
    TrainStateHeader h, back;
    memset(&h, 0, sizeof(h));
    h.step = 77;
    h.num_ranks = 1;
    h.opt_size = S;
    h.loader_bytes = sizeof(loader);
    h.model_hash = 0x1234;
    char path[512];
    snprintf(path, sizeof(path), "%s/state.bin", dir);
    checkpoint_write_state(path, &h, loader, opt, opt + S, opt + 2 * S);
    const char *bad = checkpoint_read_state(path, &back, loader_back, sizeof(loader), opt + 3 * S, opt + 4 * S,
                                            opt + 5 * S, S);
    check(!bad && back.step == 77 && back.model_hash == 0x1234 && !memcmp(loader, loader_back, sizeof(loader)) &&
              !memcmp(opt, opt + 3 * S, 3 * S * sizeof(float)),
          "state_file_round_trip", "%s", bad ? bad : "contents differ");
    check(access(path, F_OK) == 0 && (snprintf(path + strlen(path), 8, ".tmp"), access(path, F_OK) != 0),
          "state_file_no_tmp_left", "a .tmp file remains after the rename");
    snprintf(path, sizeof(path), "%s/state.bin", dir);

    /* torn: cut the file short */
    struct stat st;
    stat(path, &st);
    if (truncate(path, st.st_size - 9) != 0) die("truncate failed");
    bad = checkpoint_read_state(path, &back, loader_back, sizeof(loader), opt + 3 * S, opt + 4 * S, opt + 5 * S, S);
    check(bad && strstr(bad, "truncated"), "state_file_torn_detected", "%s", bad ? bad : "accepted a torn file");
    /* corrupted: one flipped bit in the moments */
    checkpoint_write_state(path, &h, loader, opt, opt + S, opt + 2 * S);
    FILE *f = fopen_or_die(path, "r+b");
    fseek(f, sizeof(h) + sizeof(loader) + 4 * S + 17, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(byte ^ 0x10, f);
    fclose(f);
    bad = checkpoint_read_state(path, &back, loader_back, sizeof(loader), opt + 3 * S, opt + 4 * S, opt + 5 * S, S);
    check(bad && strstr(bad, "checksum"), "state_file_bit_flip_detected", "%s", bad ? bad : "accepted a corrupted file");
    free(opt);
}

static void test_prune(const char *dir)
{
    int steps[] = {5, 10, 15, 20};
    for (int i = 0; i < 4; i++) {
        char path[800];
        checkpoint_model_path(path, sizeof(path), dir, steps[i]);
        fclose(fopen_or_die(path, "wb"));
        checkpoint_state_path(path, sizeof(path), dir, steps[i], 0);
        fclose(fopen_or_die(path, "wb"));
    }
    checkpoint_prune(dir, 2, 1);
    int left[8];
    int n = checkpoint_list_steps(dir, left, 8);
    char path[800];
    checkpoint_state_path(path, sizeof(path), dir, 10, 0);
    check(n == 2 && left[0] == 15 && left[1] == 20 && access(path, F_OK) != 0, "checkpoint_keep_last_2",
          "%d model files left (first %d), or an old state remains", n, n ? left[0] : -1);
}

static void test_logger(const char *dir)
{
    Logger lg;
    logger_init(&lg, dir, 0);
    for (int s = 0; s < 6; s++) {
        if (s % 3 == 0) logger_log_val(&lg, s, 5.0f - s);
        logger_log_train(&lg, s, 6.0f - s, 1e-3f, 0.5f);
    }
    logger_free(&lg);
    logger_init(&lg, dir, 3); /* a resume from step 3 */
    logger_free(&lg);
    char path[512], line[128], text[1024] = "";
    snprintf(path, sizeof(path), "%s/main.log", dir);
    FILE *f = fopen_or_die(path, "r");
    while (fgets(line, sizeof(line), f)) strcat(text, line);
    fclose(f);
    const char *want = "s:0 tel:5.000000\ns:0 trl:6.000000 lr:0.001000 norm:0.500000\n"
                       "s:1 trl:5.000000 lr:0.001000 norm:0.500000\ns:2 trl:4.000000 lr:0.001000 norm:0.500000\n";
    check(strcmp(text, want) == 0, "logger_llmc_format_and_resume_truncation", "main.log is:\n%s", text);
}

int main(void)
{
    char dir[] = "/tmp/test_trainer_host_XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp failed");
    test_config();
    test_help();
    test_mfu();
    test_model_file(dir);
    test_state_file(dir);
    test_logger(dir);
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/ckpt", dir);
    mkdir(sub, 0755);
    test_prune(sub);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return test_summary();
}
