/*
 * jsonl.h — take one string field out of a JSON object, as written one per
 * line in JSONL files ({"text": "...", "id": 7, ...}).
 *
 *   jsonl_string_field(line, len, "text", &out, &err)
 *       1 and out = the field's value (UTF-8, escapes decoded) when the line is
 *       a JSON object with a top-level string field of that name; 0 and err =
 *       a message when the line is not valid JSON, is not an object, or has no
 *       such string field. Never exits, never reads past line[len - 1].
 * \uXXXX escapes become UTF-8; a lone surrogate becomes U+FFFD (what Python
 * does before tiktoken sees the text). Other fields are checked and skipped.
 *
 *   text_skip_bom(&data, &size)
 *       drops a UTF-8 byte-order mark (EF BB BF) at the start of a file's
 *       text, which some editors write; it is not part of the first document.
 */
#ifndef PACKLM_JSONL_H
#define PACKLM_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_BOM "\xef\xbb\xbf"

static inline void text_skip_bom(const unsigned char **data, size_t *size)
{
    if (*size >= 3 && memcmp(*data, UTF8_BOM, 3) == 0) {
        *data += 3;
        *size -= 3;
    }
}

typedef struct {
    unsigned char *bytes;
    size_t len, cap;
} ByteBuf;

static inline int byte_buf_push(ByteBuf *b, unsigned char c)
{
    if (b->len == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        unsigned char *grown = (unsigned char *)realloc(b->bytes, cap);
        if (!grown) return 0;
        b->bytes = grown;
        b->cap = cap;
    }
    b->bytes[b->len++] = c;
    return 1;
}

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    const char *err;
    int depth;
} JsonCursor;

#define JSONL_MAX_DEPTH 256

static inline int json_fail(JsonCursor *c, const char *err)
{
    if (!c->err) c->err = err;
    return 0;
}

static inline void json_skip_space(JsonCursor *c)
{
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\r' ||
                               c->s[c->pos] == '\n'))
        c->pos++;
}

static inline int json_hex4(JsonCursor *c, uint32_t *v)
{
    if (c->len - c->pos < 4) return json_fail(c, "truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = c->s[c->pos++];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return json_fail(c, "bad hex digit in a \\u escape");
        *v = *v << 4 | (uint32_t)d;
    }
    return 1;
}

static inline int json_put_utf8(JsonCursor *c, ByteBuf *out, uint32_t cp)
{
    if (!out) return 1;
    unsigned char b[4];
    int n;
    if (cp < 0x80) { b[0] = (unsigned char)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (unsigned char)(0xC0 | cp >> 6); b[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    for (int i = 0; i < n; i++)
        if (!byte_buf_push(out, b[i])) return json_fail(c, "out of memory");
    return 1;
}

/* A string starting at the opening quote; its decoded bytes go to out (NULL: skip). */
static inline int json_string(JsonCursor *c, ByteBuf *out)
{
    if (c->pos >= c->len || c->s[c->pos] != '"') return json_fail(c, "expected a string");
    c->pos++;
    while (c->pos < c->len) {
        unsigned char ch = c->s[c->pos++];
        if (ch == '"') return 1;
        if (ch < 0x20) return json_fail(c, "control character inside a string");
        if (ch != '\\') {
            if (out && !byte_buf_push(out, ch)) return json_fail(c, "out of memory");
            continue;
        }
        if (c->pos >= c->len) break;
        unsigned char e = c->s[c->pos++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            if (!json_put_utf8(c, out, (unsigned char)decoded[simple - "\"\\/bfnrt"])) return 0;
            continue;
        }
        if (e != 'u') return json_fail(c, "unknown escape in a string");
        uint32_t cp;
        if (!json_hex4(c, &cp)) return 0;
        if (cp >= 0xD800 && cp <= 0xDBFF && c->len - c->pos >= 6 && c->s[c->pos] == '\\' && c->s[c->pos + 1] == 'u') {
            size_t save = c->pos;
            uint32_t low;
            c->pos += 2;
            if (!json_hex4(c, &low)) return 0;
            if (low >= 0xDC00 && low <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            else c->pos = save; /* not a pair: the high surrogate stands alone */
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        if (!json_put_utf8(c, out, cp)) return 0;
    }
    return json_fail(c, "unterminated string");
}

static inline int json_value(JsonCursor *c);

/* Is the object key starting at the cursor `field`? Consumes the key. */
static inline int json_key_is(JsonCursor *c, const char *field, int *match)
{
    ByteBuf key = {0};
    int ok = json_string(c, field ? &key : NULL);
    *match = ok && field && key.len == strlen(field) && memcmp(key.bytes, field, key.len) == 0;
    free(key.bytes);
    return ok;
}

/* An object or array starting at its opening bracket. In an object with
   field != NULL, the first member named `field` whose value is a string is
   decoded into out and *found set; every other value is checked and skipped. */
static inline int json_container(JsonCursor *c, unsigned char close, const char *field, ByteBuf *out, int *found)
{
    if (++c->depth > JSONL_MAX_DEPTH) return json_fail(c, "nested too deeply");
    c->pos++;
    json_skip_space(c);
    if (c->pos < c->len && c->s[c->pos] == close) {
        c->pos++;
        c->depth--;
        return 1;
    }
    for (;;) {
        int match = 0;
        if (close == '}') {
            if (!json_key_is(c, field, &match)) return 0;
            json_skip_space(c);
            if (c->pos >= c->len || c->s[c->pos] != ':') return json_fail(c, "expected ':' after an object key");
            c->pos++;
            json_skip_space(c);
        }
        if (match && !*found && c->pos < c->len && c->s[c->pos] == '"') {
            if (!json_string(c, out)) return 0;
            *found = 1;
        } else if (!json_value(c)) {
            return 0;
        }
        json_skip_space(c);
        if (c->pos >= c->len) return json_fail(c, "unterminated object or array");
        unsigned char ch = c->s[c->pos++];
        if (ch == close) break;
        if (ch != ',') return json_fail(c, "expected ',' or a closing bracket");
        json_skip_space(c);
    }
    c->depth--;
    return 1;
}

/* Any value (skipped), with the white space before it. */
static inline int json_value(JsonCursor *c)
{
    json_skip_space(c);
    if (c->pos >= c->len) return json_fail(c, "expected a value, found the end of the line");
    unsigned char ch = c->s[c->pos];
    int unused = 0;
    if (ch == '"') return json_string(c, NULL);
    if (ch == '{') return json_container(c, '}', NULL, NULL, &unused);
    if (ch == '[') return json_container(c, ']', NULL, NULL, &unused);
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if (c->len - c->pos >= n && memcmp(c->s + c->pos, words[i], n) == 0) {
            c->pos += n;
            return 1;
        }
    }
    size_t start = c->pos; /* a number: sign, digits, fraction, exponent */
    while (c->pos < c->len && c->s[c->pos] && strchr("+-0123456789.eE", c->s[c->pos])) c->pos++;
    return c->pos > start ? 1 : json_fail(c, "unexpected character where a value should be");
}

static inline int jsonl_string_field(const void *line, size_t len, const char *field, ByteBuf *out, const char **err)
{
    JsonCursor c = {(const unsigned char *)line, len, 0, NULL, 0};
    int found = 0;
    out->len = 0;
    json_skip_space(&c);
    if (c.pos >= c.len || c.s[c.pos] != '{') {
        *err = "not a JSON object";
        return 0;
    }
    if (json_container(&c, '}', field, out, &found)) {
        json_skip_space(&c);
        if (c.pos < c.len) json_fail(&c, "unexpected characters after the object");
    }
    if (!c.err && !found) json_fail(&c, "no top-level string field with that name");
    *err = c.err;
    return c.err == NULL;
}

#endif /* PACKLM_JSONL_H */
