/*
 * test_mc_eval.c — the multiple-choice eval module (llmc/mc_eval.h) without
 * a model: a file written here is read back field by field; completions are
 * laid into packed batches (segments inside rows, positions from 0, targets
 * on the completion tokens only); the winner is the lowest MEAN loss (fake
 * per-token losses chosen so that the lowest sum would pick another one);
 * two ranks together score every example once; malformed files are refused
 * with a message naming the file and the example.
 */
#include <stdio.h>
#include <string.h>

#include "mc_eval.h"
#include "test.h"

#define PATH "build/test_mc_eval.bin"

/* Example i: context of 2 + i tokens; completion k has 1 + k tokens; label i % K. */
static void write_file(const char *path, int examples, int K, int corrupt)
{
    FILE *f = fopen_or_die(path, "wb");
    int32_t h[MC_HEADER_INTS] = {MC_MAGIC, MC_VERSION, examples, 0};
    uint16_t ex[64][128];
    int len[64];
    for (int i = 0; i < examples; i++) {
        uint16_t *u = ex[i];
        int n = 0;
        u[n++] = MC_START, u[n++] = 0, u[n++] = (uint16_t)i, u[n++] = (uint16_t)(i % K), u[n++] = (uint16_t)K;
        u[n++] = (uint16_t)(2 + i);
        for (int t = 0; t < 2 + i; t++) u[n++] = (uint16_t)(10 + t);
        for (int k = 0; k < K; k++) {
            u[n++] = (uint16_t)(1 + k);
            for (int t = 0; t <= k; t++) u[n++] = (uint16_t)(100 + 10 * k + t);
        }
        u[1] = (uint16_t)(2 * n);
        len[i] = n;
        if (2 * n > h[3]) h[3] = 2 * n;
    }
    if (corrupt == 1) h[0] = 7;
    if (corrupt == 2) ex[1][3] = (uint16_t)K;        /* label out of range */
    if (corrupt == 3) ex[1][7] = 60000;              /* token outside the vocabulary */
    if (corrupt == 4) ex[1][6 + 3] = 50;             /* a completion length overrunning the example */
    fwrite_or_die(h, sizeof(h), 1, f, path);
    for (int i = 0; i < examples; i++) fwrite_or_die(ex[i], sizeof(uint16_t), (size_t)(corrupt == 5 && i == examples - 1 ? len[i] - 1 : len[i]), f, path);
    fclose_or_die(f, path);
}

static void check_read(void)
{
    write_file(PATH, 5, 4, 0);
    McSet set;
    char err[512] = "";
    const int ok = mc_read(PATH, 1000, &set, err, sizeof(err));
    int fields = ok && set.num_examples == 5;
    for (int i = 0; fields && i < 5; i++) {
        const McExample *e = &set.examples[i];
        fields = e->label == i % 4 && e->num_completions == 4 && e->context_len == 2 + i && e->tokens[0] == 10;
        for (int k = 0; fields && k < 4; k++)
            fields = e->completion_len[k] == 1 + k && e->tokens[e->completion_start[k]] == 100 + 10 * k &&
                     e->tokens[e->completion_start[k] + k] == 100 + 11 * k;
    }
    check(fields, "mc_read: labels, contexts and completions read back", "%s", ok ? "a field differs" : err);
    if (ok) mc_free(&set);
}

static void check_batches_and_scores(void)
{
    write_file(PATH, 5, 4, 0);
    McSet set;
    char err[512];
    if (!mc_read(PATH, 1000, &set, err, sizeof(err))) {
        check(0, "mc_run: file read", "%s", err);
        return;
    }
    const int B = 3, T = 12;
    PackedBatch b;
    packed_batch_alloc(&b, B, T);
    int results[2][3]; /* [one_per_row][correct, examples, batches] */
    for (int one = 0; one < 2; one++) {
        McRun run;
        mc_run_begin(&run, &set, T, 0, 1, PATH);
        int layout_ok = 1, batches = 0;
        while (mc_run_fill(&run, &b, one)) {
            batches++;
            layout_ok &= packed_batch_check(&b) == NULL;
            float losses[3 * 12];
            for (int s = 0; s < run.num_slots; s++) {
                const McSlot *slot = &run.slots[s];
                const McExample *e = &set.examples[slot->example];
                const int ctx = e->context_len, k = slot->completion, n = e->completion_len[k];
                layout_ok &= slot->first / T == (slot->first + ctx + n - 1) / T; /* inside one row */
                layout_ok &= b.pos[slot->first] == 0 && b.pos[slot->first + ctx + n - 1] == ctx + n - 1;
                layout_ok &= b.targets[slot->first + ctx - 1] == e->tokens[e->completion_start[k]];
                layout_ok &= b.targets[slot->first + ctx + n - 1] == -1 && (ctx < 2 || b.targets[slot->first] == -1);
                /* the labelled completion gets mean 1.0 spread as one big loss on a long run; the
                   others mean 1.5 - their sum is the smallest for the 1-token completion */
                for (int i = 0; i < ctx + n; i++) losses[slot->first + i] = 0.0f;
                for (int i = 0; i < n; i++)
                    losses[slot->first + ctx - 1 + i] = k == e->label ? (i == 0 ? (float)n : 0.0f) : 1.5f;
            }
            if (one) for (int r = 0; r < B; r++) {
                int segments_in_row = 0;
                for (int s = 0; s < run.num_slots; s++) segments_in_row += run.slots[s].first / T == r;
                layout_ok &= segments_in_row <= 1;
            }
            mc_run_score(&run, losses);
        }
        results[one][0] = run.correct, results[one][1] = run.examples, results[one][2] = batches;
        char name[128];
        snprintf(name, sizeof(name), "mc_run%s: completions are segments inside rows, targets on completions only",
                 one ? " one per row" : "");
        check(layout_ok, name, "a batch is laid out wrongly");
        mc_run_free(&run);
    }
    check(results[0][0] == 5 && results[0][1] == 5 && results[1][0] == 5,
          "mc_run: the lowest mean loss wins (not the lowest sum), every example scored",
          "correct %d/%d and %d/%d", results[0][0], results[0][1], results[1][0], results[1][1]);
    check(results[1][2] > results[0][2], "mc_run: one completion per row takes more batches than packing",
          "%d vs %d batches", results[1][2], results[0][2]);

    /* two ranks: disjoint halves, together every example */
    int total = 0, covered[5] = {0};
    for (int rank = 0; rank < 2; rank++) {
        McRun run;
        mc_run_begin(&run, &set, T, rank, 2, PATH);
        float zeros[3 * 12] = {0};
        while (mc_run_fill(&run, &b, 0)) {
            for (int s = 0; s < run.num_slots; s++) covered[run.slots[s].example] |= 1 << run.slots[s].completion;
            mc_run_score(&run, zeros);
        }
        total += run.examples;
        mc_run_free(&run);
    }
    int all = total == 5;
    for (int i = 0; i < 5; i++) all &= covered[i] == 15;
    check(all, "mc_run: two ranks score every example and completion once", "%d examples", total);
    packed_batch_free(&b);
    mc_free(&set);
}

static void check_refusals(void)
{
    const struct { int corrupt; const char *what, *message; } cases[] = {
        {1, "a bad magic", "not a multiple-choice eval file"},
        {2, "a label outside the completions", "example 1: label 4 of 4 completions"},
        {3, "a token outside the vocabulary", "example 1: token 60000 is outside the vocabulary"},
        {4, "lengths that overrun the example", "example 1: a run of 50 tokens"},
        {5, "a truncated file", "truncated inside example 4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(PATH, 5, 4, cases[i].corrupt);
        McSet set;
        char err[512] = "", name[128];
        const int ok = mc_read(PATH, 1000, &set, err, sizeof(err));
        snprintf(name, sizeof(name), "mc_read refuses %s with a message naming the file", cases[i].what);
        check(!ok && strstr(err, PATH) && strstr(err, cases[i].message), name, "ok=%d message: %s", ok, err);
        if (ok) mc_free(&set);
    }
    remove(PATH);
}

int main(void)
{
    check_read();
    check_batches_and_scores();
    check_refusals();
    return test_summary();
}
