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
 * does before tiktoken sees the text). The line is read by json.h's parser,
 * so every other field is checked too.
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

#include "json.h"

#define UTF8_BOM "\xef\xbb\xbf"

static inline void text_skip_bom(const unsigned char **data, size_t *size)
{
    if (*size >= 3 && memcmp(*data, UTF8_BOM, 3) == 0) {
        *data += 3;
        *size -= 3;
    }
}

/* The first top-level member named `field` whose value is a string. */
static inline const JsonValue *jsonl_find_string(const JsonValue *obj, const char *field)
{
    for (size_t i = 0; i < obj->count; i++)
        if (obj->items[i].type == JSON_STRING && strcmp(obj->keys[i], field) == 0) return &obj->items[i];
    return NULL;
}

static inline int jsonl_string_field(const void *line, size_t len, const char *field, ByteBuf *out, const char **err)
{
    JsonValue root;
    out->len = 0;
    *err = json_parse(line, len, &root, NULL);
    if (*err) return 0;
    const JsonValue *value = root.type == JSON_OBJECT ? jsonl_find_string(&root, field) : NULL;
    if (root.type != JSON_OBJECT) *err = "not a JSON object";
    else if (!value) *err = "no top-level string field with that name";
    for (size_t i = 0; value && !*err && i < value->string_len; i++)
        if (!byte_buf_push(out, (unsigned char)value->string[i])) *err = "out of memory";
    json_free(&root);
    return *err == NULL;
}

#endif /* PACKLM_JSONL_H */
