#!/usr/bin/env bash
# test_hf_roundtrip.sh — Hugging Face export and import on the CPU:
#   - model files of both families (random bf16 values; gpt2, GPT-2 vocabulary,
#     Llama with GQA + llama3 RoPE scaling, untied Llama; written by
#     build/test/test_hf_model --write-models) go through build/tools/hf_export
#     and build/tools/hf_import and come back byte-identical, from one
#     model.safetensors and from shards + index;
#   - dev/data/safetensors_check.py (json + numpy, a second reader) finds every
#     exported tensor equal to its slice of the model file;
#   - the GPT-2 vocabulary model gets vocab.json / merges.txt (50257 / 50000 lines);
#   - malformed folders are refused with a message and leave no model file.
# The Python check is skipped without numpy (CI installs python3-numpy).
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
EXPORT=build/tools/hf_export IMPORT=build/tools/hf_import
for bin in $EXPORT $IMPORT build/test/test_hf_model; do
    [ -x $bin ] || { echo "FAIL hf_roundtrip: $bin is not built"; exit 1; }
done
PY=$(python_with numpy)

build/test/test_hf_model --write-models "$TMP" >/dev/null || { echo "FAIL hf_roundtrip: writing the models failed"; exit 1; }
for model in gpt2_small gpt2_vocab llama_gqa_llama3 llama_untied; do
    for shards in single sharded; do
        flags=(); [ $shards = sharded ] && flags=(--max-shard-bytes 20000)
        out=$TMP/${model}_$shards
        if ! $EXPORT "$TMP/$model.bin" "$out" "${flags[@]}" >"$TMP/log" 2>&1; then
            echo "FAIL hf_roundtrip $model $shards: export failed: $(tail -n 2 "$TMP/log")"; continue
        fi
        if [ $shards = sharded ] && [ ! -f "$out/model.safetensors.index.json" ]; then
            echo "FAIL hf_roundtrip $model sharded: no model.safetensors.index.json"; continue
        fi
        $IMPORT "$out" "$out.bin" >"$TMP/log" 2>&1
        if cmp -s "$TMP/$model.bin" "$out.bin"; then
            echo "PASS hf_roundtrip $model ($shards safetensors): export + import gives the byte-identical model file"
        else
            echo "FAIL hf_roundtrip $model ($shards): the imported model file differs: $(tail -n 2 "$TMP/log")"
        fi
        if [ -n "$PY" ]; then
            expect "hf_roundtrip $model ($shards): the Python json+numpy reader finds every tensor equal" 0 '^ok ' \
                "$PY" dev/data/safetensors_check.py "$out" "$TMP/$model.bin"
        else
            echo "SKIP hf_roundtrip $model ($shards): python3 with numpy not found (apt-get install python3-numpy)"
        fi
    done
done

# GPT-2 tokenizer files: every token in vocab.json, one merge per token above the 256 bytes
v=$TMP/gpt2_vocab_single
if [ -f $v/vocab.json ] && [ "$(grep -c . $v/merges.txt)" = 50001 ] && grep -q '"<|endoftext|>":50256' $v/vocab.json \
    && grep -q '"Ġthe":262' $v/vocab.json && sed -n 2p $v/merges.txt | grep -qx 'Ġ t'; then
    echo "PASS hf_roundtrip: GPT-2 vocabulary model gets vocab.json (50257 tokens) and merges.txt (50000 merges, 'Ġ t' first)"
else
    echo "FAIL hf_roundtrip: GPT-2 tokenizer files missing or wrong in $v"
fi
expect "hf_roundtrip: no tokenizer files for another vocabulary" 0 '' test ! -f $TMP/gpt2_small_single/vocab.json

# refusals: nothing written, a message naming the problem
expect "hf_import refuses a Llama attention bias by name" 1 \
    "tensor 'model.layers.0.self_attn.q_proj.bias' refused: attention biases cannot be represented" \
    $IMPORT "$TMP/llama_with_bias" "$TMP/bias.bin"
expect "hf_import refuses a Llama attention bias: no model file written" 0 '' test ! -e "$TMP/bias.bin"
cp -r "$TMP/llama_untied_single" "$TMP/truncated"
truncate -s -2 "$TMP/truncated/model.safetensors"
expect "hf_import refuses a truncated safetensors file" 1 "model.safetensors': tensor '.*': data_offsets end [0-9]+ is outside the file" \
    $IMPORT "$TMP/truncated" "$TMP/trunc.bin"
cp -r "$TMP/llama_untied_sharded" "$TMP/noshard"
rm "$TMP"/noshard/model-00002-of-*.safetensors
expect "hf_import refuses a folder missing a shard" 1 "model-00002-of-[0-9]+.safetensors': cannot open" \
    $IMPORT "$TMP/noshard" "$TMP/noshard.bin"
cp -r "$TMP/llama_untied_sharded" "$TMP/badindex"
printf '{"weight_map": {"lm_head.weight": ' >"$TMP/badindex/model.safetensors.index.json"
expect "hf_import refuses an index that is not JSON" 1 "model.safetensors.index.json': not valid JSON" \
    $IMPORT "$TMP/badindex" "$TMP/badindex.bin"
cp -r "$TMP/gpt2_small_single" "$TMP/nohead"
printf '{"model_type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 128, "n_positions": 32, "vocab_size": 300}' >"$TMP/nohead/config.json"
expect "hf_import refuses head size 32" 1 "head size 32 cannot be represented" $IMPORT "$TMP/nohead" "$TMP/nohead.bin"
mkdir -p "$TMP/taken" && touch "$TMP/taken/x"
expect "hf_export refuses a non-empty output folder" 1 "output folder exists and is not empty" \
    $EXPORT "$TMP/gpt2_small.bin" "$TMP/taken"
