#!/usr/bin/env bash
# device_tokenizer_check.sh — on the GPU machine (it has tiktoken, no network):
# build build/tools/tokenize's source without utf8proc (not needed: the class
# table is compiled in), then run dev/data/tiktoken_compare.py on a carried
# corpus. Writes the test vectors and the log under $OUT.
#
# Here, first: dev/data/fetch_gpt2_vocab.sh, then put encoder.json, vocab.bpe
# and corpus.tar.xz (dev/data/gather_text_corpus.py output, tarred) in
# .tokcorpus/ (ignored through .git/info/exclude) and carry it.
set -uo pipefail
out=${OUT:-build/device_out}
work=$(mktemp -d)
mkdir -p "$out"
echo "host: $(nproc) cores; tiktoken $(python3 -c 'import tiktoken; print(tiktoken.__version__)');" \
     "utf8proc libraries seen by ldconfig: $(ldconfig -p | grep -c utf8proc)"
gcc -O2 -std=gnu11 -Wall -Illmc dev/data/tokenize.c -o "$work/tokenize" || exit 1
tar xJf .tokcorpus/corpus.tar.xz -C "$work" || exit 1
PYTHONUNBUFFERED=1 python3 dev/data/tiktoken_compare.py --vocab-dir .tokcorpus --corpus-dir "$work/corpus" \
    --tokenize "$work/tokenize" --vectors-out "$out/tokenizer_vectors.tsv" --repeat 3 2>&1 | tee "$out/compare.log"
