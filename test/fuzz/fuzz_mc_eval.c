/*
 * fuzz_mc_eval.c — libFuzzer target for the multiple-choice eval reader
 * (llmc/mc_eval.h) that train_gpt / train_cpu --eval use.
 *
 * Input: arbitrary bytes taken as a whole eval file. mc_parse must return
 * either examples or a message, never crash. When it accepts them, every
 * completion is laid into packed batches of 2 rows (T = the longest context +
 * completion, 1 + size % 2 giving one per row or packed): each batch passes
 * packed_batch_check, every completion's first target is its first token,
 * and scoring ends with every example scored and a winner in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include "mc_eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    McSet set;
    char err[512] = "";
    if (!mc_parse(data, size, "fuzz.bin", 50257, &set, err, sizeof(err))) {
        if (err[0] == '\0') abort(); /* a refusal always says why */
        return 0;
    }
    int longest_example, longest_completion;
    const int T = mc_longest_sequence(&set, &longest_example, &longest_completion);
    PackedBatch b;
    packed_batch_alloc(&b, 2, T);
    float *losses = (float *)calloc((size_t)2 * T, sizeof(float));
    McRun run;
    mc_run_begin(&run, &set, T, 0, 1, "fuzz.bin");
    while (mc_run_fill(&run, &b, (int)(size % 2))) {
        if (packed_batch_check(&b)) abort();
        for (int s = 0; s < run.num_slots; s++) {
            const McExample *e = &set.examples[run.slots[s].example];
            const int k = run.slots[s].completion;
            if (b.targets[run.slots[s].first + e->context_len - 1] != e->tokens[e->completion_start[k]]) abort();
        }
        mc_run_score(&run, losses);
    }
    if (run.examples != set.num_examples) abort();
    for (int i = 0; i < run.examples; i++)
        if (run.chosen[i] < 0 || run.chosen[i] >= set.examples[i].num_completions) abort();
    mc_run_free(&run);
    free(losses);
    packed_batch_free(&b);
    mc_free(&set);
    return 0;
}
