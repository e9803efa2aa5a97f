/*
 * fuzz_tokenizer.c — libFuzzer target for the GPT-2 tokenizer.
 *
 * Input: arbitrary bytes taken as text. The pre-tokenizer must cut them into
 * pieces of at least one byte that cover the input exactly; encoding must
 * give ids inside the vocabulary, never end-of-text, and decoding them must
 * give back the input byte for byte. Any violation aborts. The tokenizer file
 * is data/gpt2_tokenizer.bin (test/fuzz.sh runs from the repository root).
 */
#include <stdint.h>
#include <stdlib.h>
#include "tokenizer.h"

static Tokenizer tokenizer;
static int loaded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loaded) {
        tokenizer_init(&tokenizer, "data/gpt2_tokenizer.bin");
        loaded = 1;
    }
    for (size_t at = 0; at < size;) {
        size_t n = gpt2_piece_length(data + at, size - at);
        if (n == 0 || n > size - at) abort();
        at += n;
    }
    TokenList ids = {0};
    tokenizer_encode(&tokenizer, data, size, &ids);
    if (size > 0 && ids.len == 0) abort();
    for (size_t i = 0; i < ids.len; i++)
        if (ids.ids[i] < 0 || ids.ids[i] >= tokenizer.vocab_size || ids.ids[i] == tokenizer_eot(&tokenizer)) abort();
    size_t len;
    unsigned char *back = tokenizer_decode(&tokenizer, ids.ids, ids.len, &len);
    if (len != size || memcmp(back, data, size) != 0) abort();
    free(back);
    token_list_free(&ids);
    return 0;
}
