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
 * Strings are decoded by jsonl.h's json_string (escapes, \uXXXX -> UTF-8).
 */
#ifndef PACKLM_JSON_H
#define PACKLM_JSON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

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
    if (++c->depth > JSONL_MAX_DEPTH) return json_fail(c, "nested too deeply");
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
