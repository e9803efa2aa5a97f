#!/usr/bin/env bash
# hf_check.sh — Hugging Face import / export against transformers, in ONE call
# on the GPU machine (transformers and safetensors installed there; nothing is
# downloaded): dev/data/hf_check.py builds tiny random GPT-2 / Llama models
# (GQA, llama3 RoPE scaling, untied, fp32 / bf16 / fp16 files), imports them
# and compares logits and losses with transformers; then trains a gpt2 for
# 300 steps with train_gpt, exports it, and compares losses on the same
# validation rows and generates text. The table is printed last and kept in
# $OUT/hf_check.log.
#
#   dev/data/hf_check.sh          (device: run with carry ["train_gpt"] to skip the nvcc build)
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-build/hf_check_out}
rm -rf build/hf_check # the exports refuse a non-empty folder: start clean
mkdir -p "$OUT" build/hf_check
if ! ./train_gpt --help >/dev/null 2>&1; then
    echo "building train_gpt"
    make GPU_ARCH="${GPU_ARCH:-90a}" train_gpt >"$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log"; exit 1; }
fi
make -j 8 build/tools/hf_export build/tools/hf_import build/tools/model_eval build/tools/tokenize >"$OUT/tools.log" 2>&1 \
    || { tail -n 20 "$OUT/tools.log"; exit 1; }
python3 dev/data/hf_check.py build/hf_check 2>&1 | tee "$OUT/hf_check.log"
exit "${PIPESTATUS[0]}"
