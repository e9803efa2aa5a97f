/*
 * unicode.h — the two facts about text that GPT-2's pre-tokenizer needs:
 * where each character of a UTF-8 byte string ends, and whether it is a
 * letter, a number, white space or something else.
 *
 *   utf8_next(s, len, &cp)  bytes in the character at s[0] (1..4); cp is its
 *                           code point, or UTF8_INVALID_BYTE when s[0] does
 *                           not start a well-formed UTF-8 sequence (that
 *                           single byte then counts as one "other" character)
 *   unicode_class(cp)       UCLASS_LETTER / NUMBER / SPACE / OTHER
 *
 * Well-formed means Unicode's table 3-7: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. The class
 * ranges are generated from utf8proc by dev/data/gen_unicode_classes.c.
 */
#ifndef PACKLM_UNICODE_H
#define PACKLM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_INVALID_BYTE 0xFFFFFFFFu

typedef enum { UCLASS_OTHER, UCLASS_LETTER, UCLASS_NUMBER, UCLASS_SPACE } UnicodeClass;

typedef struct {
    uint32_t first, last;
    UnicodeClass cls;
} UnicodeRange;

#include "unicode_class_table.h"

static inline int utf8_is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

static inline size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    /* sequence length and the allowed range of the second byte */
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    uint32_t value;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        value = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        value = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;      /* no overlong 3-byte forms */
        if (b == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        value = b & 0x07;
        if (b == 0xF0) lo = 0x90;      /* no overlong 4-byte forms */
        if (b == 0xF4) hi = 0x8F;      /* nothing above U+10FFFF */
    } else {
        *cp = UTF8_INVALID_BYTE;       /* continuation byte, C0, C1, F5..FF */
        return 1;
    }
    if (len < n || s[1] < lo || s[1] > hi) {
        *cp = UTF8_INVALID_BYTE;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if (!utf8_is_continuation(s[i])) {
            *cp = UTF8_INVALID_BYTE;
            return 1;
        }
        value = (value << 6) | (s[i] & 0x3F);
    }
    *cp = value;
    return n;
}

static inline UnicodeClass unicode_class(uint32_t cp)
{
    const size_t count = sizeof(unicode_class_ranges) / sizeof(unicode_class_ranges[0]);
    size_t lo = 0, hi = count;
    while (lo < hi) { /* binary search: the first range whose last >= cp */
        size_t mid = (lo + hi) / 2;
        if (unicode_class_ranges[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < count && unicode_class_ranges[lo].first <= cp ? unicode_class_ranges[lo].cls : UCLASS_OTHER;
}

#endif /* PACKLM_UNICODE_H */
