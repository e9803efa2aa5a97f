/*
 * pretokenize.h — GPT-2's pre-tokenizer: cut text into the pieces that BPE
 * then encodes one at a time (no merge ever crosses a piece boundary).
 *
 * GPT-2 (and tiktoken's "gpt2") define the pieces by the regular expression
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * matched leftmost-first, alternative by alternative. Written out by hand:
 *   1. an apostrophe followed by s, t, m, d, re, ve or ll (ASCII, lower case);
 *   2. otherwise an optional single space (U+0020) followed by a maximal run
 *      of letters, or of numbers, or of "other" characters (neither letter,
 *      number nor white space), the class chosen by the run's first character;
 *   3. otherwise a white-space run: all of it at the end of the text; all but
 *      its last character when more follows (that last character, often the
 *      space before a word, then starts the next piece); a lone white-space
 *      character before a non-space character is a piece of its own.
 * Bytes that are not well-formed UTF-8 count as "other" characters, one
 * byte each (llmc/unicode.h), so any byte string splits without error.
 *
 *   gpt2_piece_length(s, len)   bytes in the piece that starts at s[0], len >= 1
 */
#ifndef PACKLM_PRETOKENIZE_H
#define PACKLM_PRETOKENIZE_H

#include "unicode.h"

/* Class of the character at s[0] and its length in bytes. */
static inline UnicodeClass pretoken_char(const unsigned char *s, size_t len, size_t *bytes)
{
    uint32_t cp;
    *bytes = utf8_next(s, len, &cp);
    return cp == UTF8_INVALID_BYTE ? UCLASS_OTHER : unicode_class(cp);
}

/* End of the maximal run of class-`cls` characters that starts at s[pos]. */
static inline size_t pretoken_run_end(const unsigned char *s, size_t len, size_t pos, UnicodeClass cls)
{
    while (pos < len) {
        size_t bytes;
        if (pretoken_char(s + pos, len - pos, &bytes) != cls) break;
        pos += bytes;
    }
    return pos;
}

static inline size_t gpt2_piece_length(const unsigned char *s, size_t len)
{
    if (s[0] == '\'' && len >= 2) { /* 1. contractions */
        unsigned char a = s[1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (len >= 3 && ((a == 'r' && s[2] == 'e') || (a == 'v' && s[2] == 'e') || (a == 'l' && s[2] == 'l')))
            return 3;
    }
    size_t first_bytes;
    UnicodeClass first = pretoken_char(s, len, &first_bytes);
    if (s[0] == ' ' && len >= 2) { /* 2. " " + a run of the next character's class */
        size_t second_bytes;
        UnicodeClass second = pretoken_char(s + 1, len - 1, &second_bytes);
        if (second != UCLASS_SPACE) return pretoken_run_end(s, len, 1, second);
    }
    if (first != UCLASS_SPACE) return pretoken_run_end(s, len, 0, first);
    /* 3. white space: find the run's end and where its last character starts */
    size_t end = 0, last_start = 0;
    while (end < len) {
        size_t bytes;
        if (pretoken_char(s + end, len - end, &bytes) != UCLASS_SPACE) break;
        last_start = end;
        end += bytes;
    }
    if (end == len || last_start == 0) return end;
    return last_start;
}

#endif /* PACKLM_PRETOKENIZE_H */
