/*
 * write_shards.c — turn text into llm.c-format token shards.
 *
 * Inputs (any mix, in the order given):
 *   FILE.jsonl   one document per non-empty line: a JSON object whose string
 *                field --field (default "text") is the document
 *   FILE         one document, or several with --delimiter LINE (documents
 *                are separated by lines equal to LINE, e.g. "%" in fortune files)
 *   DIRECTORY    every regular file below it, in sorted path order, read as above
 * A UTF-8 byte-order mark at the start of a file is dropped.
 * Each document is encoded with the GPT-2 tokenizer and prefixed with the
 * end-of-text token, so a document never crosses a shard and every shard
 * starts with end-of-text (llmc/shard.h). Shards hold whole documents and are
 * closed before the document that would take them past their size (a
 * document longer than a whole shard gets a shard of its own).
 * Every corpus gives a val shard AND at least one train shard: the first
 * shard, PREFIX_val_000000.bin, holds the first --val-percent of the
 * documents (default 1%; at least one, at most all but one) but stops before
 * --val-tokens; the rest are PREFIX_train_000001.bin, ... of --shard-tokens
 * each. A corpus of fewer than 2 documents is refused before anything is
 * written. The documents are counted in a first pass over the inputs (with
 * --shuffle they are in memory already). Tokens are uint16 (magic 20240520,
 * version 1) unless an id can exceed 65535 (or --uint32): then uint32 (magic
 * 20240801, version 7). Header [2] = token count. Each shard is written to
 * NAME.tmp and renamed when complete (utils.h OutFile), so a failure (disk
 * full) never leaves a partial shard under its final name. Missing
 * directories in PREFIX are created. The tokenizer file is looked for in the
 * current directory, then above the executable (build/tools -> the
 * repository). Progress goes to stderr about once a second; a summary at the
 * end names the val shard and the train shards.
 */
#include <dirent.h>
#include <time.h>
#include "jsonl.h"
#include "rand.h"
#include "shard.h"
#include "tokenizer.h"

#define DEFAULT_PREFIX "out/shard"
#define DEFAULT_TOKENIZER "data/gpt2_tokenizer.bin"
#define DEFAULT_SHARD_TOKENS 100000000L
#define DEFAULT_VAL_PERCENT 1.0

static const char *usage_text =
    "usage: write_shards [options] INPUT...\n"
    "Encode text into llm.c token shards PREFIX_val_000000.bin, PREFIX_train_000001.bin, ...\n"
    "INPUT: a text file (one document), a .jsonl file (one document per line), or a directory\n"
    "(every file below it, sorted). Every document is prefixed with end-of-text (50256).\n"
    "Every corpus of 2 or more documents gives a val shard and at least one train shard.\n"
    "  -o PREFIX            output path prefix (default " DEFAULT_PREFIX ")\n"
    "  -t TOKENIZER         tokenizer file (default " DEFAULT_TOKENIZER ", looked for in the current\n"
    "                       directory, then in the repository above this executable)\n"
    "  --shard-tokens N     tokens per train shard (default 100000000)\n"
    "  --val-percent P      the val shard takes the first P% of the documents, at least one and\n"
    "                       at most all but one (default 1)\n"
    "  --val-tokens N       ... and stops before N tokens (default: --shard-tokens, 100000000)\n"
    "  --field NAME         the JSONL field holding the text (default text)\n"
    "  --delimiter LINE     split text files into documents at lines equal to LINE (default: none,\n"
    "                       one document per text file)\n"
    "  --shuffle SEED       shuffle the documents (all held in memory) before writing (default: no shuffle)\n"
    "  --uint32             write uint32 tokens even if every id fits in uint16 (default: uint16\n"
    "                       when the vocabulary fits)\n";

typedef struct {
    const char *prefix, *field, *delimiter;
    long shard_tokens, val_tokens;
    long val_documents; /* documents in the val shard (before --val-tokens stops it) */
    int token_bytes;
    /* the first pass only counts the (non-empty) documents */
    int counting;
    long counted;
    const Tokenizer *tok;
    /* the shard being filled, and the document being encoded */
    TokenList shard, doc;
    int shard_index;
    long shard_docs;
    /* with --shuffle: every document's text, kept until the end */
    int keep_documents;
    ByteBuf kept;
    size_t *kept_ends;
    size_t kept_count, kept_cap;
    /* statistics */
    long documents, skipped_empty;
    size_t tokens, bytes_in;
    long val_docs_written;  /* documents and tokens of the val shard, for the summary */
    size_t val_tokens_written;
    double start, last_report;
} Writer;

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p of the directories in `prefix` (everything up to its last '/'). */
static void make_parent_dirs(const char *prefix)
{
    size_t n = strlen(prefix);
    char *path = (char *)malloc_or_die(n + 1);
    memcpy(path, prefix, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (path[i] != '/') continue;
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) die("cannot create directory '%s': %s", path, strerror(errno));
        path[i] = '/';
    }
    free(path);
}

static void write_shard(Writer *w)
{
    char path[4096];
    int is_val = w->shard_index == 0;
    if (snprintf(path, sizeof(path), "%s_%s_%06d.bin", w->prefix, is_val ? "val" : "train", w->shard_index) >=
        (int)sizeof(path))
        die("write_shards: output prefix '%s' is too long", w->prefix);
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = w->token_bytes == 2 ? SHARD_MAGIC_U16 : SHARD_MAGIC_U32;
    header[1] = w->token_bytes == 2 ? SHARD_VERSION_U16 : SHARD_VERSION_U32;
    header[2] = (int32_t)w->shard.len;
    OutFile out;
    out_file_open(&out, path);
    out_file_write(&out, header, sizeof(header));
    unsigned char *payload = (unsigned char *)malloc_or_die(w->shard.len * (size_t)w->token_bytes);
    for (size_t i = 0; i < w->shard.len; i++) {
        uint32_t id = (uint32_t)w->shard.ids[i];
        if (w->token_bytes == 2) {
            uint16_t v = (uint16_t)id;
            memcpy(payload + 2 * i, &v, 2);
        } else {
            memcpy(payload + 4 * i, &id, 4);
        }
    }
    out_file_write(&out, payload, (size_t)w->token_bytes * w->shard.len);
    out_file_commit(&out);
    free(payload);
    fprintf(stderr, "wrote %s: %zu tokens, %ld documents\n", path, w->shard.len, w->shard_docs);
    if (is_val) {
        w->val_docs_written = w->shard_docs;
        w->val_tokens_written = w->shard.len;
    }
    w->shard.len = 0;
    w->shard_docs = 0;
    w->shard_index++;
}

static void report_progress(Writer *w, int force)
{
    double now = seconds_now();
    if (!force && now - w->last_report < 1.0) return;
    w->last_report = now;
    double elapsed = now - w->start > 1e-9 ? now - w->start : 1e-9;
    fprintf(stderr, "%ld documents, %zu tokens, %.1f MB read, %.2f MB/s, %.0f tokens/s\n", w->documents, w->tokens,
            (double)w->bytes_in / 1e6, (double)w->bytes_in / 1e6 / elapsed, (double)w->tokens / elapsed);
}

/* Encode one document into the current shard, closing the shard first if it would overflow. */
static void encode_document(Writer *w, const unsigned char *text, size_t len)
{
    TokenList *doc = &w->doc;
    doc->len = 0;
    token_list_push(doc, tokenizer_eot(w->tok));
    tokenizer_encode(w->tok, text, len, doc);
    const int in_val = w->shard_index == 0;
    const long limit = in_val ? w->val_tokens : w->shard_tokens;
    if (w->shard.len > 0 && (w->shard.len + doc->len > (size_t)limit || (in_val && w->shard_docs >= w->val_documents)))
        write_shard(w);
    if (doc->len > (size_t)INT32_MAX - w->shard.len)
        die("write_shards: a document of %zu tokens does not fit a shard's int32 token count", doc->len);
    for (size_t i = 0; i < doc->len; i++) token_list_push(&w->shard, doc->ids[i]);
    w->shard_docs++;
    w->documents++;
    w->tokens += doc->len;
    w->bytes_in += len;
    report_progress(w, 0);
}

static void add_document(Writer *w, const unsigned char *text, size_t len)
{
    if (len == 0) {
        if (!w->counting) w->skipped_empty++;
        return;
    }
    if (w->counting) {
        w->counted++;
        return;
    }
    if (!w->keep_documents) {
        encode_document(w, text, len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (!byte_buf_push(&w->kept, text[i])) die("write_shards: out of memory holding documents for --shuffle");
    if (w->kept_count == w->kept_cap) {
        w->kept_cap = w->kept_cap ? 2 * w->kept_cap : 1024;
        w->kept_ends = (size_t *)realloc(w->kept_ends, w->kept_cap * sizeof(size_t));
        if (!w->kept_ends) die("write_shards: out of memory holding documents for --shuffle");
    }
    w->kept_ends[w->kept_count++] = w->kept.len;
}

/* A text file: one document, or documents between lines equal to the delimiter. */
static void read_text_file(Writer *w, const unsigned char *data, size_t size)
{
    if (!w->delimiter) {
        add_document(w, data, size);
        return;
    }
    size_t delim_len = strlen(w->delimiter), doc_start = 0, line_start = 0;
    while (line_start < size) {
        const unsigned char *nl = (const unsigned char *)memchr(data + line_start, '\n', size - line_start);
        size_t line_end = nl ? (size_t)(nl - data) : size, next = nl ? line_end + 1 : size;
        size_t content_end = line_end > line_start && data[line_end - 1] == '\r' ? line_end - 1 : line_end;
        if (content_end - line_start == delim_len && memcmp(data + line_start, w->delimiter, delim_len) == 0) {
            add_document(w, data + doc_start, line_start - doc_start);
            doc_start = next;
        }
        line_start = next;
    }
    add_document(w, data + doc_start, size - doc_start);
}

static void read_jsonl_file(Writer *w, const char *path, const unsigned char *data, size_t size)
{
    ByteBuf text = {0};
    long line_number = 0;
    for (size_t pos = 0; pos < size;) {
        const unsigned char *nl = (const unsigned char *)memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        line_number++;
        size_t k = pos;
        while (k < end && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r')) k++;
        if (k < end) {
            const char *err = NULL;
            if (!jsonl_string_field(data + pos, end - pos, w->field, &text, &err))
                die("'%s' line %ld: %s (looking for the string field \"%s\")", path, line_number, err, w->field);
            add_document(w, text.bytes, text.len);
        }
        pos = end + 1;
    }
    free(text.bytes);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void read_input(Writer *w, const char *path);

static void read_directory(Writer *w, const char *path)
{
    struct dirent **entries;
    int n = scandir(path, &entries, NULL, alphasort);
    if (n < 0) die("cannot list directory '%s': %s", path, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = entries[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            size_t len = strlen(path) + strlen(name) + 2;
            char *child = (char *)malloc_or_die(len);
            snprintf(child, len, "%s/%s", path, name);
            read_input(w, child);
            free(child);
        }
        free(entries[i]);
    }
    free(entries);
}

static void read_input(Writer *w, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) die("input '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        read_directory(w, path);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "skipping '%s': not a regular file or directory\n", path);
        return;
    }
    size_t size;
    unsigned char *data = read_file_or_die(path, &size);
    const unsigned char *text = data;
    text_skip_bom(&text, &size);
    if (ends_with(path, ".jsonl")) read_jsonl_file(w, path, text, size);
    else read_text_file(w, text, size);
    free(data);
}

static void encode_kept_documents(Writer *w, uint64_t seed)
{
    if (w->kept_count > (size_t)INT32_MAX) die("write_shards: --shuffle handles at most %d documents", INT32_MAX);
    int *order = (int *)malloc_or_die(w->kept_count * sizeof(int));
    for (size_t i = 0; i < w->kept_count; i++) order[i] = (int)i;
    Rng rng = rng_create(seed);
    rng_shuffle_ints(&rng, order, (int)w->kept_count);
    for (size_t i = 0; i < w->kept_count; i++) {
        size_t d = (size_t)order[i], begin = d == 0 ? 0 : w->kept_ends[d - 1];
        encode_document(w, w->kept.bytes + begin, w->kept_ends[d] - begin);
    }
    free(order);
}

/* Documents in the val shard: P% of n, at least one, at most n - 1 (n >= 2). */
static long val_document_count(long n, double percent)
{
    long k = (long)(n * percent / 100.0 + 0.5);
    if (k < 1) k = 1;
    if (k > n - 1) k = n - 1;
    return k;
}

int main(int argc, char **argv)
{
    Writer w = {0};
    w.prefix = DEFAULT_PREFIX;
    w.field = "text";
    w.shard_tokens = DEFAULT_SHARD_TOKENS;
    w.val_tokens = -1;
    const char *tokenizer_arg = NULL;
    double val_percent = DEFAULT_VAL_PERCENT;
    int force_uint32 = 0, num_inputs = 0;
    long seed = 0;
    const char **inputs = (const char **)malloc_or_die((size_t)argc * sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "-o") == 0 && has_value) w.prefix = argv[++i];
        else if (strcmp(a, "-t") == 0 && has_value) tokenizer_arg = argv[++i];
        else if (strcmp(a, "--shard-tokens") == 0 && has_value) w.shard_tokens = parse_long_or_die(argv[++i], a);
        else if (strcmp(a, "--val-tokens") == 0 && has_value) w.val_tokens = parse_long_or_die(argv[++i], a);
        else if (strcmp(a, "--val-percent") == 0 && has_value) val_percent = parse_double_or_die(argv[++i], a);
        else if (strcmp(a, "--field") == 0 && has_value) w.field = argv[++i];
        else if (strcmp(a, "--delimiter") == 0 && has_value) w.delimiter = argv[++i];
        else if (strcmp(a, "--shuffle") == 0 && has_value) {
            seed = parse_long_or_die(argv[++i], a);
            w.keep_documents = 1;
        } else if (strcmp(a, "--uint32") == 0) force_uint32 = 1;
        else if (a[0] == '-' && a[1] != '\0') die("write_shards: unknown option or missing value '%s' (see --help)", a);
        else inputs[num_inputs++] = a;
    }
    if (num_inputs == 0) {
        fputs(usage_text, stderr);
        die("write_shards: no input given");
    }
    if (w.val_tokens < 0) w.val_tokens = w.shard_tokens;
    if (w.shard_tokens < 1 || w.shard_tokens > INT32_MAX || w.val_tokens < 1 || w.val_tokens > INT32_MAX)
        die("write_shards: --shard-tokens and --val-tokens must be in 1..%d", INT32_MAX);
    if (!(val_percent > 0.0 && val_percent <= 100.0)) die("write_shards: --val-percent must be in (0, 100]");
    if (w.delimiter && strchr(w.delimiter, '\n')) die("write_shards: --delimiter is one line; it cannot hold a newline");

    char tokenizer_path[4096];
    if (tokenizer_arg) snprintf(tokenizer_path, sizeof(tokenizer_path), "%s", tokenizer_arg);
    else if (!find_repo_file(DEFAULT_TOKENIZER, tokenizer_path, sizeof(tokenizer_path)))
        die("write_shards: tokenizer file '%s' is not in the current directory nor in the repository above this "
            "executable; pass -t PATH", DEFAULT_TOKENIZER);
    Tokenizer tok;
    tokenizer_init(&tok, tokenizer_path);
    w.tok = &tok;

    /* count the documents first (with --shuffle, reading keeps them: that is the count) */
    w.counting = !w.keep_documents;
    for (int i = 0; w.counting && i < num_inputs; i++) read_input(&w, inputs[i]);
    w.counting = 0;
    if (w.keep_documents)
        for (int i = 0; i < num_inputs; i++) read_input(&w, inputs[i]);
    const long total = w.keep_documents ? (long)w.kept_count : w.counted;
    if (total < 2)
        die("write_shards: the inputs hold %ld non-empty document%s; a val shard and a train shard need at least 2 "
            "(give more inputs, or split a text file into documents with --delimiter LINE)",
            total, total == 1 ? "" : "s");
    w.val_documents = val_document_count(total, val_percent);

    make_parent_dirs(w.prefix);
    w.token_bytes = force_uint32 || tok.vocab_size > 65536 ? 4 : 2;
    w.start = w.last_report = seconds_now();
    if (w.keep_documents) encode_kept_documents(&w, (uint64_t)seed);
    else
        for (int i = 0; i < num_inputs; i++) read_input(&w, inputs[i]);
    if (w.shard.len > 0) write_shard(&w);
    report_progress(&w, 1);
    if (w.shard_index < 2) /* only when --val-tokens cut nothing and every document fit the val shard: impossible */
        die("write_shards: no train shard was written (%ld documents)", w.documents);
    double elapsed = seconds_now() - w.start;
    fprintf(stderr,
            "done: %ld documents (%ld empty ones skipped), %zu tokens (%.1f per document) of uint%d, %.1f MB of text in "
            "%.2f s\n"
            "  val:   %s_val_000000.bin, %ld documents, %zu tokens\n"
            "  train: %s_train_000001.bin .. %s_train_%06d.bin, %d shard%s, %ld documents, %zu tokens\n",
            w.documents, w.skipped_empty, w.tokens, (double)w.tokens / (double)w.documents, 8 * w.token_bytes,
            (double)w.bytes_in / 1e6, elapsed, w.prefix, w.val_docs_written, w.val_tokens_written, w.prefix, w.prefix,
            w.shard_index - 1, w.shard_index - 1, w.shard_index == 2 ? "" : "s", w.documents - w.val_docs_written,
            w.tokens - w.val_tokens_written);
    tokenizer_free(&tok);
    token_list_free(&w.shard);
    token_list_free(&w.doc);
    free(w.kept.bytes);
    free(w.kept_ends);
    free(inputs);
    return 0;
}
