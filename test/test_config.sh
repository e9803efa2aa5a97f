#!/usr/bin/env bash
# test_config.sh — bad configurations and flags make ./train_cpu exit non-zero
# with a clear message (never a crash); good ones train, on the synthetic batch
# and on shards written by build/tools/write_shards. Run from the repo root
# after `make` has built train_cpu and the tools (TEST_DEPS does).
set -u
bin=./train_cpu
if [ ! -x "$bin" ]; then
    echo "FAIL test_config: $bin is not built (run make train_cpu)"
    exit 1
fi
tiny_gpt2="gpt2:d1,C=32,NH=2,V=64,T=16"
tiny_llama="llama:1B,L=1,C=32,NH=4,NKV=2,F=48,V=64,T=16"
tmp=$(mktemp -d)
out=$tmp/out
trap 'rm -rf "$tmp"' EXIT

# expect_error NAME "MESSAGE PART" ARGS...: exit status 1 and the message on stderr
expect_error() {
    local name=$1 want=$2
    shift 2
    "$bin" "$@" >/dev/null 2>"$out"
    local rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $name: exit status $rc, want 1 ($(head -c 200 "$out"))"
    elif ! grep -qF -- "$want" "$out"; then
        echo "FAIL $name: message '$(head -c 200 "$out")' lacks '$want'"
    else
        echo "PASS $name"
    fi
}

expect_error config_heads_divide_channels "heads must divide channels" -e "gpt2:d2,C=64,NH=5"
expect_error config_kv_heads_divide_heads "kv heads must divide heads" -e "llama:1B,L=1,C=64,NH=4,NKV=3,F=64"
expect_error config_unknown_descriptor "unknown model descriptor 'gpt3:d2'" -e "gpt3:d2"
expect_error config_unknown_size "unknown model descriptor 'llama:2B'" -e "llama:2B"
expect_error config_unknown_override_key "unknown override key 'depth'" -e "gpt2:d2,depth=3"
expect_error config_override_not_key_value "is not key=value" -e "gpt2:d2,C"
expect_error config_override_not_number "is not an integer" -e "gpt2:d2,C=sixty"
expect_error config_T_beyond_position_table "larger than the model's position table (16)" -e "$tiny_gpt2" -t 32
expect_error config_T_beyond_llama_max "larger than the model's maximum sequence length (16)" -e "$tiny_llama" -t 17
# train_cpu reads train_gpt's flag table (llmc/train_config.h): same flags, same messages
expect_error flag_unknown "unknown flag '--frobnicate'" --frobnicate 1
expect_error flag_gpu_only "flag -z (ZeRO stage: 0 all-reduce gradients" -z 1
expect_error flag_gpu_only_sample "flag -s (print a sample every N steps, 0 = never) is not supported by train_cpu" -s 5
expect_error flag_missing_value "flag -b needs a value" -b
expect_error flag_negative_seed "flag --seed: -5 is out of range" --seed -5
expect_error flag_not_integer "flag -b: 'four' is not an integer" -b four
expect_error flag_zero_rows "flag -b: 0 is out of range [1, 1048576]" -b 0
expect_error flag_rows_as_typed "flag -b: 4294967297 is out of range" -b 4294967297
expect_error flag_steps_as_typed "flag -x: 4294967298 is out of range" -x 4294967298
expect_error flag_checkpoint_every_as_typed "flag -n: 4294967298 is out of range" -n 4294967298
expect_error flag_overflow_as_typed "flag -d: 99999999999999999999 is out of range" -d 99999999999999999999
expect_error flag_n_is_checkpoint_interval "flag -n 3 asks for checkpoints, but no -o DIR" -n 3
expect_error flag_unknown_schedule "flag -k: unknown schedule 'steep'" -k steep -e "$tiny_gpt2" -t 16
expect_error flag_unknown_packing "flag --packing: unknown strategy 'tight'" --packing tight
expect_error data_doc_token_mismatch "first token is 50256, not the document token 7 (--doc-token)" --doc-token 7
expect_error data_doc_token_outside_vocab "vocabulary size 64 does not contain the document token 100" \
    -e "$tiny_gpt2" -t 16 --doc-token 100
expect_error flag_lr_inf "flag -l: inf is out of range" -l inf
expect_error data_vocab_too_small "vocabulary size 64 does not contain the end-of-text token" -i "$tmp/none_*.bin" \
    -e "$tiny_gpt2" -t 16
expect_error data_no_match "no shard files match '$tmp/none_*.bin'" -i "$tmp/none_*.bin" -e "gpt2:d1,C=32,NH=2,T=16" \
    -t 16

"$bin" --help >"$out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^usage: train_cpu" "$out" && grep -q "^  -n N .*(default 0)" "$out" &&
    ! grep -q "^  -z " "$out"; then
    echo "PASS flag_help"
else
    echo "FAIL flag_help: exit status $rc, output '$(head -c 200 "$out")'"
fi

# expect_run NAME ARGS...: exit status 0 and 3 step lines with finite losses
expect_run() {
    local name=$1
    shift
    "$bin" -x 3 "$@" >"$out" 2>&1
    local rc=$?
    local steps
    steps=$(grep -cE '^step +[0-9]+/3 \| loss [0-9]+\.[0-9]+ ' "$out")
    if [ "$rc" -eq 0 ] && [ "$steps" -eq 3 ]; then
        echo "PASS $name"
    else
        echo "FAIL $name: exit status $rc, $steps finite step lines; $(tail -n 2 "$out")"
    fi
}

for model in "$tiny_gpt2" "$tiny_llama" "$tiny_llama,tied=0"; do
    expect_run "train_cpu_synthetic[$model]" -i synthetic -e "$model" -b 2 -t 16
done

# without -i: the embedded corpus (committed under data/)
expect_run train_cpu_default_data -e "gpt2:d1,C=32,NH=2,T=16" -b 2 -t 16
if grep -q "^data: data/fortunes_train_\*.bin" "$out"; then
    echo "PASS train_cpu_default_data_is_fortunes"
else
    echo "FAIL train_cpu_default_data_is_fortunes: $(head -n 1 "$out")"
fi

# a tiny corpus of 30 documents written as shards, trained on with both packings
mkdir -p "$tmp/corpus"
for i in $(seq 1 30); do
    for j in $(seq 1 $((i % 7 + 1))); do echo "document $i line $j: the quick brown fox $((i * j))"; done \
        >"$tmp/corpus/doc$i.txt"
done
if build/tools/write_shards -o "$tmp/tiny" --shard-tokens 400 --val-tokens 100 "$tmp/corpus" >"$out" 2>&1; then
    for packing in bestfit chunk; do
        expect_run "train_cpu_shards[$packing]" -i "$tmp/tiny_train_*.bin" --packing "$packing" -b 2 -t 16 \
            -e "gpt2:d1,C=32,NH=2,T=16"
    done
    # the same shards with their documents starting at token 50000 instead of 50256 (as llm.c's Llama 3
    # shards start theirs at 128000): found with --doc-token 50000, and the count of documents
    # shard_info sees is the same
    for f in "$tmp"/tiny_train_*.bin; do
        python3 -c "import sys, array
data = open(sys.argv[1], 'rb').read(); t = array.array('H', data[1024:])
t = array.array('H', [50000 if x == 50256 else x for x in t]); open(sys.argv[2], 'wb').write(data[:1024] + t.tobytes())" \
            "$f" "${f/tiny_train/other_train}"
    done
    expect_run "train_cpu_doc_token" -i "$tmp/other_train_*.bin" --doc-token 50000 -b 2 -t 16 -e "gpt2:d1,C=32,NH=2,T=16"
    docs_eot=$(build/tools/shard_info "$tmp/tiny_train_*.bin" | awk '$1 ~ /tiny_train/ {n += $4} END {print n}')
    docs_other=$(build/tools/shard_info -d 50000 "$tmp/other_train_*.bin" | awk '$1 ~ /other_train/ {n += $4} END {print n}')
    if [ -n "$docs_eot" ] && [ "$docs_eot" -gt 1 ] && [ "$docs_eot" = "$docs_other" ]; then
        echo "PASS shard_info_doc_token ($docs_other documents)"
    else
        echo "FAIL shard_info_doc_token: $docs_eot documents at 50256, $docs_other at 50000"
    fi
else
    echo "FAIL train_cpu_shards: build/tools/write_shards could not write the corpus: $(tail -n 2 "$out")"
fi
