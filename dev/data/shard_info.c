/*
 * shard_info — validate a glob of llm.c-format token shards and print their
 * statistics: per shard the token type, tokens and documents with their
 * length range; then, for rows of T tokens, what each packing strategy
 * (chunk, bestfit) would make of them: padding %, documents split %, mean
 * segment length.
 *
 * Every shard is fully validated (header, file size, first token, every id
 * below the vocabulary); the first problem ends the run with a message naming
 * the file and a non-zero exit.
 *
 * usage: shard_info [-t T] [-v VOCAB] [-d ID] PATTERN     (quote the pattern)
 */
#include <stdio.h>
#include <string.h>
#include "dataloader.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shard_info [-t T] [-v VOCAB] [-d ID] PATTERN\n"
            "  Validate every shard matching PATTERN (a glob; quote it) and print token,\n"
            "  document and packing statistics.\n"
            "  -t T       tokens per row for the packing statistics (default 1024)\n"
            "  -v VOCAB   vocabulary size; every token id must be below it (default 50257)\n"
            "  -d ID      the token that starts every document (default 50256, GPT-2's end-of-text;\n"
            "             train_gpt --doc-token)\n"
            "  -h, --help this text\n");
}

int main(int argc, char **argv)
{
    int T = 1024, vocab = 50257, doc_token = SHARD_EOT;
    const char *pattern = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "-v") || !strcmp(argv[i], "-d")) {
            if (i + 1 >= argc) die("option %s needs a value (see --help)", argv[i]);
            long v = parse_long_or_die(argv[i + 1], argv[i]);
            long lowest = argv[i][1] == 'd' ? 0 : 1, limit = argv[i][1] == 't' ? 1L << 20 : 1L << 30;
            if (v < lowest || v > limit) die("option %s: %ld is not in [%ld, %ld]", argv[i], v, lowest, limit);
            if (argv[i][1] == 't') T = (int)v;
            else if (argv[i][1] == 'v') vocab = (int)v;
            else doc_token = (int)v;
            i++;
        } else if (argv[i][0] == '-') {
            usage(stderr);
            die("unknown option '%s'", argv[i]);
        } else if (pattern) {
            die("more than one pattern given ('%s' and '%s'); quote the glob", pattern, argv[i]);
        } else {
            pattern = argv[i];
        }
    }
    if (!pattern) {
        usage(stderr);
        die("no shard pattern given");
    }

    int num_paths;
    char **paths = shard_glob(pattern, &num_paths);
    PackingStats chunk = {0}, bestfit = {0};
    int64_t tokens = 0, docs = 0;
    printf("%-40s %6s %12s %10s %9s %9s %9s\n", "shard", "type", "tokens", "documents", "min len", "mean len",
           "max len");
    for (int i = 0; i < num_paths; i++) {
        Shard s;
        shard_open(&s, paths[i]);
        shard_check_tokens(&s, vocab, doc_token);
        int num_docs;
        int64_t *starts = shard_find_documents(&s, doc_token, &num_docs);
        int64_t shortest = INT64_MAX, longest = 0;
        for (int d = 0; d < num_docs; d++) {
            int64_t len = starts[d + 1] - starts[d];
            if (len < shortest) shortest = len;
            if (len > longest) longest = len;
        }
        printf("%-40s %6s %12lld %10d %9lld %9.1f %9lld\n", paths[i], s.token_bytes == 2 ? "uint16" : "uint32",
               (long long)s.num_tokens, num_docs, (long long)shortest, (double)s.num_tokens / num_docs,
               (long long)longest);
        PackedRows rows;
        pack_chunk(&rows, starts, num_docs, T);
        packing_stats_add(&chunk, &rows.stats);
        packed_rows_free(&rows);
        pack_bestfit(&rows, starts, num_docs, T, DATALOADER_BESTFIT_WINDOW);
        packing_stats_add(&bestfit, &rows.stats);
        packed_rows_free(&rows);
        tokens += s.num_tokens;
        docs += num_docs;
        free(starts);
        shard_close(&s);
    }
    printf("total: %d shard%s, %lld tokens, %lld documents, all valid (vocabulary %d)\n", num_paths,
           num_paths == 1 ? "" : "s", (long long)tokens, (long long)docs, vocab);
    printf("packing chunk, T %d:\n", T);
    packing_stats_print(&chunk, stdout);
    printf("packing bestfit, T %d (window %d documents):\n", T, DATALOADER_BESTFIT_WINDOW);
    packing_stats_print(&bestfit, stdout);
    shard_free_paths(paths, num_paths);
    return 0;
}
