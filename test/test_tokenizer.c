/*
 * test_tokenizer.c — the GPT-2 tokenizer (llmc/tokenizer.h) and its parts.
 *
 *  - every fixed string of test/data/tokenizer_vectors.tsv encodes to the ids
 *    tiktoken gave for it (dev/data/tiktoken_compare.py wrote the file);
 *  - decode(encode(x)) == x on random byte strings, random UTF-8 text and
 *    long single-class runs (the heap path of the merge loop);
 *  - the UTF-8 decoder accepts exactly the well-formed sequences (checked
 *    against an independent encoder of every code point);
 *  - the class table gives the expected class for landmark characters;
 *  - the pre-tokenizer splits landmark strings as the GPT-2 rule says;
 *  - a damaged tokenizer file is refused with a message naming it.
 */
#include <sys/wait.h>
#include <unistd.h>
#include "rand.h"
#include "test.h"
#include "tokenizer.h"

#define TOKENIZER_PATH "data/gpt2_tokenizer.bin"
#define VECTORS_PATH "test/data/tokenizer_vectors.tsv"

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One vector line "name \t hex \t ids"; returns 0 if malformed. */
static int parse_vector(char *line, char **name, unsigned char *bytes, size_t *len, int *ids, size_t *count)
{
    char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2) return 0;
    *tab1 = *tab2 = '\0';
    *name = line;
    const char *hex = tab1 + 1;
    *len = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        int hi = hex_value(hex[0]), lo = hex_value(hex[1]);
        if (hi < 0 || lo < 0) return 0;
        bytes[(*len)++] = (unsigned char)(hi * 16 + lo);
    }
    *count = 0;
    for (char *p = tab2 + 1; *p && *p != '\n';) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return 0;
        ids[(*count)++] = (int)v;
        p = end;
        while (*p == ' ') p++;
    }
    return 1;
}

static void test_vectors(const Tokenizer *t)
{
    FILE *f = fopen(VECTORS_PATH, "r");
    if (!check(f != NULL, "vectors_file", "cannot open %s", VECTORS_PATH)) return;
    static char line[65536];
    static unsigned char bytes[16384];
    static int ids[16384];
    int cases = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#') continue;
        char *name = NULL, label[256];
        size_t len = 0, count = 0;
        if (!parse_vector(line, &name, bytes, &len, ids, &count)) {
            check(0, "vectors_parse", "malformed line %d in %s", cases + 1, VECTORS_PATH);
            break;
        }
        TokenList got = {0};
        tokenizer_encode(t, bytes, len, &got);
        int same = got.len == count && (count == 0 || memcmp(got.ids, ids, count * sizeof(int)) == 0);
        size_t first = 0;
        while (first < got.len && first < count && got.ids[first] == ids[first]) first++;
        snprintf(label, sizeof(label), "tiktoken_ids_%.200s", name);
        check(same, label, "%zu ids, tiktoken %zu; first difference at index %zu (ours %d, tiktoken %d)", got.len,
              count, first, first < got.len ? got.ids[first] : -1, first < count ? ids[first] : -1);
        token_list_free(&got);
        cases++;
    }
    fclose(f);
    check(cases >= 20, "vectors_count", "only %d vectors in %s", cases, VECTORS_PATH);
}

static int round_trips(const Tokenizer *t, const unsigned char *bytes, size_t len)
{
    TokenList ids = {0};
    tokenizer_encode(t, bytes, len, &ids);
    int ok = 1;
    for (size_t i = 0; i < ids.len; i++) ok &= ids.ids[i] >= 0 && ids.ids[i] < t->vocab_size && ids.ids[i] != t->eot;
    size_t back_len;
    unsigned char *back = tokenizer_decode(t, ids.ids, ids.len, &back_len);
    ok &= back_len == len && memcmp(back, bytes, len) == 0;
    free(back);
    token_list_free(&ids);
    return ok;
}

static void test_round_trips(const Tokenizer *t)
{
    Rng rng = rng_create(20261125);
    static unsigned char buf[5000];
    int bad_bytes = 0, bad_text = 0;
    for (int trial = 0; trial < 300; trial++) { /* arbitrary bytes */
        size_t len = (size_t)rng_below(&rng, sizeof(buf));
        for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)rng_below(&rng, 256);
        bad_bytes += !round_trips(t, buf, len);
    }
    check(bad_bytes == 0, "round_trip_random_bytes", "%d of 300 random byte strings did not round-trip", bad_bytes);
    static const char *const pool[] = {"the", " cat", "  ", "\n", "\t", "'s", "'", "9", "é", "中", "🎉", "\xc2\xa0", ".",
                                       "\xff", "\xe2\x82", "x"};
    for (int trial = 0; trial < 300; trial++) { /* text-like strings */
        size_t len = 0;
        while (len < sizeof(buf) - 8) {
            const char *piece = pool[rng_below(&rng, sizeof(pool) / sizeof(pool[0]))];
            memcpy(buf + len, piece, strlen(piece));
            len += strlen(piece);
            if (rng_below(&rng, 50) == 0) break;
        }
        bad_text += !round_trips(t, buf, len);
    }
    check(bad_text == 0, "round_trip_random_text", "%d of 300 random texts did not round-trip", bad_text);
    /* one long piece each: letters, digits, symbols, spaces, invalid bytes */
    static const unsigned char fill[] = {'a', '7', '#', ' ', 0xFF};
    int bad_long = 0;
    for (size_t k = 0; k < sizeof(fill); k++) {
        memset(buf, fill[k], sizeof(buf));
        bad_long += !round_trips(t, buf, sizeof(buf));
    }
    check(bad_long == 0, "round_trip_long_runs", "%d of %zu long single-character runs did not round-trip", bad_long,
          sizeof(fill));
}

/* Independent UTF-8 encoder, to check utf8_next on every code point. */
static size_t encode_utf8(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { out[0] = (unsigned char)(0xC0 | (cp >> 6)); out[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        out[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
    out[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

static void test_utf8(void)
{
    int bad = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        unsigned char b[4];
        size_t n = encode_utf8(cp, b), got_n;
        uint32_t got;
        got_n = utf8_next(b, n, &got);
        int surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (surrogate ? (got != UTF8_INVALID_BYTE || got_n != 1) : (got != cp || got_n != n)) bad++;
        if (n > 1 && utf8_next(b, n - 1, &got) != 1) bad++;                  /* truncated */
        if (n > 1 && (utf8_next(b, n - 1, &got), got != UTF8_INVALID_BYTE)) bad++;
    }
    check(bad == 0, "utf8_every_code_point", "%d code points decoded wrongly (whole or truncated)", bad);
    static const char *const invalid[] = {"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                          "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
                                          "\xc3\x28", "\xe2\x28\xa1"};
    int accepted = 0;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)invalid[i], strlen(invalid[i]), &cp);
        accepted += n != 1 || cp != UTF8_INVALID_BYTE;
    }
    check(accepted == 0, "utf8_rejects_ill_formed", "%d ill-formed sequences were accepted", accepted);
}

static void test_classes(void)
{
    struct { uint32_t cp; UnicodeClass cls; } cases[] = {
        {'a', UCLASS_LETTER}, {'Z', UCLASS_LETTER}, {0xE9, UCLASS_LETTER}, {0x4E2D, UCLASS_LETTER},
        {0x01C5, UCLASS_LETTER}, {0x02B0, UCLASS_LETTER}, {'0', UCLASS_NUMBER}, {0x0663, UCLASS_NUMBER},
        {0x216B, UCLASS_NUMBER}, {0xBD, UCLASS_NUMBER}, {0xB2, UCLASS_NUMBER}, {' ', UCLASS_SPACE},
        {'\t', UCLASS_SPACE}, {'\n', UCLASS_SPACE}, {0x0B, UCLASS_SPACE}, {0x85, UCLASS_SPACE}, {0xA0, UCLASS_SPACE},
        {0x3000, UCLASS_SPACE}, {0x2028, UCLASS_SPACE}, {0x1C, UCLASS_OTHER}, {0x200B, UCLASS_OTHER},
        {0xFEFF, UCLASS_OTHER}, {'\'', UCLASS_OTHER}, {0x1F389, UCLASS_OTHER}, {0, UCLASS_OTHER},
        {0x10FFFF, UCLASS_OTHER}, {0x0301, UCLASS_OTHER}};
    const size_t rows = sizeof(unicode_class_ranges) / sizeof(unicode_class_ranges[0]);
    int unsorted = 0;
    for (size_t i = 0; i < rows; i++) {
        const UnicodeRange *r = &unicode_class_ranges[i];
        unsorted += r->first > r->last || (i > 0 && r->first <= unicode_class_ranges[i - 1].last) ||
                    r->cls == UCLASS_OTHER || r->last > 0x10FFFF;
    }
    check(rows > 100 && unsorted == 0, "unicode_table_sorted", "%d of %zu ranges out of order or malformed", unsorted,
          rows);
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (unicode_class(cases[i].cp) != cases[i].cls) {
            printf("  U+%04X: class %d, expected %d\n", cases[i].cp, unicode_class(cases[i].cp), cases[i].cls);
            bad++;
        }
    }
    check(bad == 0, "unicode_classes", "%d landmark characters in the wrong class", bad);
}

/* Split s with gpt2_piece_length, joining the pieces with '|'. */
static void split_pieces(const char *s, char *out)
{
    size_t len = strlen(s), at = 0;
    out[0] = '\0';
    while (at < len) {
        size_t n = gpt2_piece_length((const unsigned char *)s + at, len - at);
        strncat(out, s + at, n);
        at += n;
        if (at < len) strcat(out, "|");
    }
}

static void test_pretokenizer(void)
{
    static const char *const cases[][2] = {
        {"Hello world", "Hello| world"},
        {"it's they'll we're I'M", "it|'s| they|'ll| we|'re| I|'|M"},
        {"a  b", "a| | b"},
        {"a \nb", "a| |\n|b"},
        {"x   ", "x|   "},
        {"  \n\n  y", "  \n\n | y"},
        {"abc123 456", "abc|123| 456"},
        {" !!? ok", " !!?| ok"},
        {"''s", "''|s"},
        {"caf\xc3\xa9 \xe4\xb8\xad", "caf\xc3\xa9| \xe4\xb8\xad"},
        {"a\xff\xfe b", "a|\xff\xfe| b"},
        {"\t\tx", "\t|\t|x"},
    };
    int bad = 0;
    char got[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        split_pieces(cases[i][0], got);
        if (strcmp(got, cases[i][1]) != 0) {
            printf("  '%s' split as '%s', expected '%s'\n", cases[i][0], got, cases[i][1]);
            bad++;
        }
    }
    check(bad == 0, "pretokenizer_splits", "%d strings split wrongly", bad);
}

/* tokenizer_init on a damaged copy of the file must exit non-zero naming it. */
static void expect_refused(const char *label, const unsigned char *bytes, size_t size, const char *needle)
{
    char path[] = "build/test_tokenizer_bad_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        check(0, label, "cannot create a temporary file %s", path);
        return;
    }
    FILE *f = fdopen(fd, "wb");
    fwrite(bytes, 1, size, f);
    fclose(f);
    fflush(stdout);
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        check(0, label, "pipe() failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        Tokenizer t;
        tokenizer_init(&t, path);
        _exit(0);
    }
    close(pipefd[1]);
    char msg[1024] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(msg) - 1 && (r = read(pipefd[0], msg + got, sizeof(msg) - 1 - got)) > 0) got += (size_t)r;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    unlink(path);
    int exited_nonzero = WIFEXITED(status) && WEXITSTATUS(status) != 0;
    check(exited_nonzero && strstr(msg, path) && strstr(msg, needle), label,
          "expected a non-zero exit with a message naming the file and '%s'; got status %d, message '%s'", needle,
          status, msg);
}

static void test_bad_files(void)
{
    size_t size;
    unsigned char *good = read_file_or_die(TOKENIZER_PATH, &size);
    unsigned char *copy = (unsigned char *)malloc_or_die(size + 16);
    memcpy(copy, good, size);
    copy[0] ^= 1;
    expect_refused("tokenizer_file_bad_magic", copy, size, "bad magic");
    memcpy(copy, good, size);
    expect_refused("tokenizer_file_truncated", copy, size - 3, "truncated");
    expect_refused("tokenizer_file_header_only", copy, 1024, "truncated");
    expect_refused("tokenizer_file_short", copy, 10, "shorter than");
    memcpy(copy + size, "junk", 4);
    expect_refused("tokenizer_file_trailing_bytes", copy, size + 4, "unexpected bytes");
    memcpy(copy, good, size);
    copy[8] = 0xFF, copy[9] = 0xFF, copy[10] = 0xFF, copy[11] = 0x7F;
    expect_refused("tokenizer_file_bad_vocab_size", copy, size, "vocabulary size");
    memcpy(copy, good, size);
    /* the first records are the printable bytes '!'.. in order, 2 bytes each: spell token 'A' as "B" */
    copy[1024 + 2 * ('A' - '!') + 1] = 'B';
    expect_refused("tokenizer_file_duplicate_token", copy, size, "same bytes");
    free(copy);
    free(good);
}

int main(void)
{
    Tokenizer t;
    tokenizer_init(&t, TOKENIZER_PATH);
    check(t.vocab_size == 50257 && tokenizer_eot(&t) == 50256, "tokenizer_file_header", "vocab %d, eot %d",
          t.vocab_size, tokenizer_eot(&t));
    size_t len = 0;
    const unsigned char *eot = tokenizer_token_bytes(&t, tokenizer_eot(&t), &len);
    check(eot && len == 13 && memcmp(eot, "<|endoftext|>", 13) == 0, "eot_bytes", "end-of-text token bytes wrong");
    check(tokenizer_token_bytes(&t, t.vocab_size, &len) == NULL && tokenizer_token_bytes(&t, -1, &len) == NULL,
          "token_bytes_out_of_range", "an id outside the vocabulary gave bytes");
    test_vectors(&t);
    test_round_trips(&t);
    test_utf8();
    test_classes();
    test_pretokenizer();
    test_bad_files();
    tokenizer_free(&t);
    return test_summary();
}
