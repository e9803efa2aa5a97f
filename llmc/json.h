/*
 * json.h — a small JSON document reader: the whole text becomes a tree of
 * JsonValue (objects keep their keys in file order). Used for the headers of
 * safetensors files and for Hugging Face config.json / index files.
 *
 *   json_parse(text, len, &root, &err_pos)  NULL, or a message (and the byte
 *                                           offset where the problem is)
 *   json_get(obj, "key")                    member value or NULL
 *   json_as_uint64(v, &u)                   1 if v is a non-negative integer
 *                                           written without fraction/exponent
 *   json_free(&root)
 * Never exits and never reads past text[len - 1]: bad input is a message.
 * The lexer below (cursor, json_string: escapes, \uXXXX -> UTF-8, a lone
 * surrogate -> U+FFFD) also serves jsonl.h, which reads JSONL lines with it.
 */
#ifndef PACKLM_JSON_H
#define PACKLM_JSON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


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

#define JSON_MAX_DEPTH 256

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

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue {
    JsonType type;
    int boolean;              /* JSON_BOOL */
    double number;            /* JSON_NUMBER */
    int is_uint;              /* JSON_NUMBER written as plain digits that fit uint64 */
    uint64_t uint_value;
    char *string;             /* JSON_STRING: decoded, NUL-terminated (may hold NULs) */
    size_t string_len;
    struct JsonValue *items;  /* JSON_ARRAY / JSON_OBJECT members */
    char **keys;              /* JSON_OBJECT: key of each member */
    size_t count;
} JsonValue;

static inline void json_free(JsonValue *v)
{
    for (size_t i = 0; i < v->count; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof(*v));
}

static inline int json_parse_value(JsonCursor *c, JsonValue *out);

/* A decoded string as a malloc'd NUL-terminated buffer. */
static inline int json_parse_string(JsonCursor *c, char **out, size_t *len)
{
    ByteBuf b = {0};
    if (!json_string(c, &b) || !byte_buf_push(&b, 0)) {
        free(b.bytes);
        return json_fail(c, "out of memory");
    }
    *out = (char *)b.bytes;
    *len = b.len - 1;
    return 1;
}

/* Number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static inline int json_parse_number(JsonCursor *c, JsonValue *out)
{
    const size_t start = c->pos;
    const unsigned char *s = c->s;
#define JSON_DIGIT(i) ((i) < c->len && s[i] >= '0' && s[i] <= '9')
    size_t i = start;
    if (i < c->len && s[i] == '-') i++;
    if (!JSON_DIGIT(i)) return json_fail(c, "unexpected character where a value should be");
    if (s[i] == '0') i++;
    else while (JSON_DIGIT(i)) i++;
    int plain = 1;
    if (i < c->len && s[i] == '.') {
        plain = 0;
        if (!JSON_DIGIT(i + 1)) return json_fail(c, "number with an empty fraction");
        for (i++; JSON_DIGIT(i); i++) {}
    }
    if (i < c->len && (s[i] == 'e' || s[i] == 'E')) {
        plain = 0;
        i++;
        if (i < c->len && (s[i] == '+' || s[i] == '-')) i++;
        if (!JSON_DIGIT(i)) return json_fail(c, "number with an empty exponent");
        while (JSON_DIGIT(i)) i++;
    }
#undef JSON_DIGIT
    char buf[64];
    size_t n = i - start;
    if (n >= sizeof(buf)) return json_fail(c, "number too long");
    memcpy(buf, s + start, n);
    buf[n] = 0;
    out->type = JSON_NUMBER;
    out->number = strtod(buf, NULL);
    if (plain && buf[0] != '-') {
        uint64_t u = 0;
        int fits = 1;
        for (size_t k = 0; k < n; k++) {
            uint64_t digit = (uint64_t)(buf[k] - '0');
            if (u > (UINT64_MAX - digit) / 10) fits = 0;
            u = u * 10 + digit;
        }
        out->is_uint = fits;
        out->uint_value = fits ? u : 0;
    }
    c->pos = i;
    return 1;
}

/* An object or array starting at its opening bracket. */
static inline int json_parse_container(JsonCursor *c, JsonValue *out, int object)
{
    const unsigned char close = object ? '}' : ']';
    if (++c->depth > JSON_MAX_DEPTH) return json_fail(c, "nested too deeply");
    out->type = object ? JSON_OBJECT : JSON_ARRAY;
    c->pos++;
    json_skip_space(c);
    if (c->pos < c->len && c->s[c->pos] == close) {
        c->pos++;
        c->depth--;
        return 1;
    }
    size_t cap = 0;
    for (;;) {
        if (out->count == cap) {
            cap = cap ? 2 * cap : 8;
            JsonValue *items = (JsonValue *)realloc(out->items, cap * sizeof(JsonValue));
            if (!items) return json_fail(c, "out of memory");
            out->items = items;
            if (object) {
                char **keys = (char **)realloc(out->keys, cap * sizeof(char *));
                if (!keys) return json_fail(c, "out of memory");
                out->keys = keys;
            }
        }
        JsonValue *item = &out->items[out->count];
        memset(item, 0, sizeof(*item));
        if (object) {
            size_t key_len;
            out->keys[out->count] = NULL;
            if (!json_parse_string(c, &out->keys[out->count], &key_len)) return 0;
            out->count++; /* counted now so json_free releases the key on failure */
            json_skip_space(c);
            if (c->pos >= c->len || c->s[c->pos] != ':') return json_fail(c, "expected ':' after an object key");
            c->pos++;
        } else {
            out->count++;
        }
        if (!json_parse_value(c, item)) return 0;
        json_skip_space(c);
        if (c->pos >= c->len) return json_fail(c, "unterminated object or array");
        const unsigned char ch = c->s[c->pos++];
        if (ch == close) break;
        if (ch != ',') return json_fail(c, "expected ',' or a closing bracket");
        json_skip_space(c);
    }
    c->depth--;
    return 1;
}

static inline int json_parse_value(JsonCursor *c, JsonValue *out)
{
    json_skip_space(c);
    if (c->pos >= c->len) return json_fail(c, "expected a value, found the end of the text");
    const unsigned char ch = c->s[c->pos];
    if (ch == '"') {
        out->type = JSON_STRING;
        return json_parse_string(c, &out->string, &out->string_len);
    }
    if (ch == '{' || ch == '[') return json_parse_container(c, out, ch == '{');
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        const size_t n = strlen(words[i]);
        if (c->len - c->pos >= n && memcmp(c->s + c->pos, words[i], n) == 0) {
            c->pos += n;
            out->type = i < 2 ? JSON_BOOL : JSON_NULL;
            out->boolean = i == 0;
            return 1;
        }
    }
    return json_parse_number(c, out);
}

/* Parse a whole document; NULL on success (free *root with json_free). */
static inline const char *json_parse(const void *text, size_t len, JsonValue *root, size_t *err_pos)
{
    JsonCursor c = {(const unsigned char *)text, len, 0, NULL, 0};
    memset(root, 0, sizeof(*root));
    if (json_parse_value(&c, root)) {
        json_skip_space(&c);
        if (c.pos < c.len) json_fail(&c, "unexpected characters after the value");
    }
    if (err_pos) *err_pos = c.pos;
    if (c.err) json_free(root);
    return c.err;
}

/* Member `key` of an object (the first of that name), or NULL. */
static inline const JsonValue *json_get(const JsonValue *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

static inline int json_as_uint64(const JsonValue *v, uint64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !v->is_uint) return 0;
    *out = v->uint_value;
    return 1;
}

#endif /* PACKLM_JSON_H */
