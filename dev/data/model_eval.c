/*
 * model_eval.c — a model file evaluated by the fp32 CPU reference
 * (llmc/model_cpu.h): the oracle side of dev/data/hf_check.sh and of the
 * multiple-choice tests.
 *
 *   model_eval MODEL.bin --docs SHARD [--logits OUT]   every document of the shard
 *       as its own sequence (positions from 0); each token's target is the next
 *       stream token (the next document's end-of-text at a document end, as in
 *       train_gpt's validation rows). Prints the mean loss over all tokens;
 *       --logits writes float32 logits (tokens, V), documents in order.
 *   model_eval MODEL.bin --eval FILE                   accuracy on a multiple-choice
 *       eval file (llmc/mc_eval.h), four completions per batch of rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "checkpoint.h"
#include "mc_eval.h"
#include "model_cpu.h"
#include "shard.h"

/* A CpuModel for batches of B x T holding the model file's parameters. */
static void load_model(CpuModel *m, const char *path, int B, int T)
{
    ModelConfig c;
    int version;
    checkpoint_read_model_config(path, &c, &version);
    if (T > c.max_seq_len) die("'%s': sequences of %d tokens exceed the model's %d", path, T, c.max_seq_len);
    cpu_model_create(m, &c, B, T, 0);
    uint16_t *bits = (uint16_t *)malloc_or_die(m->layout.total * sizeof(uint16_t));
    checkpoint_read_model_params(path, bits, m->layout.total);
    for (size_t i = 0; i < m->layout.total; i++) m->params[i] = float_from_bf16_bits(bits[i]);
    free(bits);
}

static void eval_docs(const char *model_path, const char *shard_path, const char *logits_path)
{
    Shard s;
    shard_open(&s, shard_path);
    int num_docs;
    int64_t *starts = shard_find_documents(&s, SHARD_EOT, &num_docs);
    int longest = 0;
    for (int d = 0; d < num_docs; d++) {
        const int64_t end = d + 1 < num_docs ? starts[d + 1] : s.num_tokens;
        if (end - starts[d] > longest) longest = (int)(end - starts[d]);
    }
    CpuModel m;
    load_model(&m, model_path, 1, longest);
    shard_check_tokens(&s, m.cfg.vocab_size, SHARD_EOT);
    OutFile out; /* LOGITS.tmp, renamed when complete */
    if (logits_path) out_file_open(&out, logits_path);
    const int V = m.cfg.vocab_size, Vp = m.cfg.padded_vocab_size;
    double sum = 0.0;
    long tokens = 0;
    for (int d = 0; d < num_docs; d++) {
        const int64_t end = d + 1 < num_docs ? starts[d + 1] : s.num_tokens;
        PackedBatch b;
        packed_batch_alloc(&b, 1, (int)(end - starts[d]));
        for (int64_t j = starts[d]; j < end; j++) {
            b.inputs[j - starts[d]] = (int)shard_token(&s, j);
            b.targets[j - starts[d]] = j + 1 < s.num_tokens ? (int)shard_token(&s, j + 1) : SHARD_EOT;
        }
        b.num_segments = 1;
        b.cu_seqlens[0] = 0;
        b.cu_seqlens[1] = b.T;
        packed_batch_derive_positions(&b);
        cpu_model_forward(&m, &b, 0);
        for (int i = 0; i < b.T; i++) sum += m.losses[i];
        tokens += b.T;
        for (int i = 0; logits_path && i < b.T; i++) out_file_write(&out, m.logits + (size_t)i * Vp, V * sizeof(float));
        packed_batch_free(&b);
    }
    if (logits_path) out_file_commit(&out);
    printf("docs: %d documents, %ld tokens, mean loss %.6f (fp32 CPU reference)\n", num_docs, tokens, sum / tokens);
    free(starts);
    shard_close(&s);
    cpu_model_free(&m);
}

static void eval_choices(const char *model_path, const char *eval_path)
{
    ModelConfig c;
    int version;
    checkpoint_read_model_config(model_path, &c, &version);
    McSet set;
    char err[1024];
    if (!mc_read(eval_path, c.vocab_size, &set, err, sizeof(err))) die("%s", err);
    int longest_example, longest_completion;
    const int T = mc_longest_sequence(&set, &longest_example, &longest_completion);
    CpuModel m;
    load_model(&m, model_path, 4, T);
    PackedBatch b;
    packed_batch_alloc(&b, 4, T);
    McRun run;
    mc_run_begin(&run, &set, T, 0, 1, eval_path);
    while (mc_run_fill(&run, &b, 0)) {
        cpu_model_forward(&m, &b, 0);
        mc_run_score(&run, m.losses);
    }
    for (int i = 0; i < run.examples; i++)
        printf("example %d: label %d, chosen %d (%s)\n", i, set.examples[i].label, run.chosen[i],
               run.chosen[i] == set.examples[i].label ? "right" : "wrong");
    printf("eval: %d of %d examples correct, accuracy %.4f\n", run.correct, run.examples,
           (double)run.correct / run.examples);
    mc_run_free(&run);
    packed_batch_free(&b);
    cpu_model_free(&m);
    mc_free(&set);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "--eval") == 0) {
        eval_choices(argv[1], argv[3]);
        return 0;
    }
    if ((argc == 4 || argc == 6) && strcmp(argv[2], "--docs") == 0 && (argc == 4 || strcmp(argv[4], "--logits") == 0)) {
        eval_docs(argv[1], argv[3], argc == 6 ? argv[5] : NULL);
        return 0;
    }
    fprintf(stderr, "usage: model_eval MODEL.bin --docs SHARD [--logits OUT]\n"
                    "       model_eval MODEL.bin --eval FILE\n"
                    "  the fp32 CPU reference on a model file: per-document loss (and logits), or the\n"
                    "  accuracy on a multiple-choice eval file\n");
    return 1;
}
