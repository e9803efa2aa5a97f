/*
 * tokenize.c — encode a file with the GPT-2 tokenizer, or print a shard as text.
 *
 *   tokenize encode [-t TOKENIZER] [-o IDS] [--repeat N] FILE
 *       The ids of FILE's bytes (no end-of-text added): int32 little-endian
 *       into IDS with -o, else decimal on stdout, one line. Encodes N times
 *       (default 1) and reports the median time, tokens/s and MB/s on stderr.
 *   tokenize decode [-t TOKENIZER] SHARD
 *       The text of an llm.c-format shard on stdout; every document starts
 *       with the end-of-text token, printed as "<|endoftext|>".
 *
 * Built as build/tools/tokenize (make tools).
 */
#include <time.h>
#include "shard.h"
#include "tokenizer.h"

#define DEFAULT_TOKENIZER "data/gpt2_tokenizer.bin"

static const char *usage_text =
    "usage: tokenize encode [-t TOKENIZER] [-o IDS] [--repeat N] FILE\n"
    "       tokenize decode [-t TOKENIZER] SHARD\n"
    "  encode   GPT-2 ids of FILE's bytes: int32 little-endian into IDS (-o), else decimal on\n"
    "           stdout; the median time of N encodes (default 1), tokens/s and MB/s on stderr\n"
    "  decode   the text of an llm.c token shard on stdout\n"
    "  -t PATH  tokenizer file (default data/gpt2_tokenizer.bin)\n";

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void encode_file(const Tokenizer *t, const char *path, const char *out_path, int repeats)
{
    size_t size;
    unsigned char *text = read_file_or_die(path, &size);
    double *times = (double *)malloc_or_die((size_t)repeats * sizeof(double));
    TokenList ids = {0};
    for (int r = 0; r < repeats; r++) {
        ids.len = 0;
        double start = seconds_now();
        tokenizer_encode(t, text, size, &ids);
        times[r] = seconds_now() - start;
    }
    qsort(times, (size_t)repeats, sizeof(double), compare_doubles);
    double median = times[repeats / 2];
    fprintf(stderr, "%s: %zu bytes -> %zu tokens, median of %d: %.4f s, %.0f tokens/s, %.2f MB/s\n", path, size,
            ids.len, repeats, median, (double)ids.len / median, (double)size / median / 1e6);
    if (out_path) { /* written to OUT.tmp, renamed when complete */
        OutFile out;
        out_file_open(&out, out_path);
        out_file_write(&out, ids.ids, ids.len * sizeof(int));
        out_file_commit(&out);
    } else {
        for (size_t i = 0; i < ids.len; i++) printf(i ? " %d" : "%d", ids.ids[i]);
        printf("\n");
    }
    token_list_free(&ids);
    free(times);
    free(text);
}

static void decode_shard(const Tokenizer *t, const char *path)
{
    Shard s;
    shard_open(&s, path);
    shard_check_tokens(&s, t->vocab_size, SHARD_EOT);
    for (int64_t i = 0; i < s.num_tokens; i++) {
        size_t len = 0;
        const unsigned char *bytes = tokenizer_token_bytes(t, (int)shard_token(&s, i), &len);
        fwrite(bytes, 1, len, stdout);
    }
    if (fflush(stdout) != 0) die("writing the text of '%s' to stdout failed: %s", path, strerror(errno));
    shard_close(&s);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    const char *mode = argv[1], *tokenizer_path = NULL, *out_path = NULL, *input = NULL;
    int repeats = 1;
    for (int i = 2; i < argc; i++) {
        int has_value = i + 1 < argc;
        if (strcmp(argv[i], "-t") == 0 && has_value) tokenizer_path = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && has_value) out_path = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && has_value) repeats = (int)parse_long_or_die(argv[++i], "--repeat");
        else if (argv[i][0] == '-') die("tokenize: unknown option or missing value: '%s' (see --help)", argv[i]);
        else if (input) die("tokenize: one input file only, got '%s' and '%s'", input, argv[i]);
        else input = argv[i];
    }
    if (!input) die("tokenize %s: no input file given (see --help)", mode);
    if (repeats < 1) die("tokenize: --repeat must be at least 1, got %d", repeats);
    char found[4096];
    if (!tokenizer_path && !find_repo_file(DEFAULT_TOKENIZER, found, sizeof(found)))
        die("tokenize: tokenizer file '%s' is not in the current directory nor in the repository above this "
            "executable; pass -t PATH", DEFAULT_TOKENIZER);
    Tokenizer t;
    tokenizer_init(&t, tokenizer_path ? tokenizer_path : found);
    if (strcmp(mode, "encode") == 0) encode_file(&t, input, out_path, repeats);
    else if (strcmp(mode, "decode") == 0) decode_shard(&t, input);
    else die("tokenize: unknown mode '%s' (expected encode or decode; see --help)", mode);
    tokenizer_free(&t);
    return 0;
}
