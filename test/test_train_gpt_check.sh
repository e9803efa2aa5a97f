#!/usr/bin/env bash
# test_train_gpt_check.sh — train_gpt checks every input that needs no GPU
# before it asks for one, and `--check` does only that (no GPU needed: CI runs
# it). For good inputs --check prints the plan (model, parameters, memory
# estimate, tokens per step, data, steps) and exits 0; bad flags, a model too
# large for this machine, a bad shard, a truncated model file and a torn
# checkpoint are reported as such, with and without --check, never as "no
# CUDA GPU is visible". The checkpoints come from ./train_cpu, which writes
# train_gpt's formats. Needs ./train_gpt (built by `make train_gpt`, and by
# `make compile-check` in CI); SKIP without it, or when it is older than its
# sources.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
if ! train_gpt_usable; then
    echo "SKIP train_gpt_check: ./train_gpt is not built or older than its sources (make train_gpt)"
    exit 0
fi
[ -x ./train_cpu ] || { echo "FAIL train_gpt_check: ./train_cpu is not built (make train_cpu)"; exit 1; }
TMP=$(mktemp -d /tmp/packlm_gpt_check.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
gpu=./train_gpt
TINY=(-e "gpt2:d1,C=64,NH=1,T=16" -b 2 -t 16 -d 64)

expect check_default_plan 0 'plan: 124475904 parameters \(124.5M\); GPU memory estimate for B=16 T=1024: [0-9.]+ GiB' \
    $gpu --check
expect check_ok_line 0 '^check: ok: every input is valid' $gpu --check -x 10
expect check_tokens_per_step 0 'plan: 16 rows x 1024 tokens x 2 micro-steps x 1 rank = 32768 tokens per step' \
    $gpu --check -d 32768
expect check_steps 0 'plan: 300 steps \(4.92e\+06 tokens\)' $gpu --check -x 300
expect check_data 0 'dataloader: 1 shard, [0-9]+ tokens' $gpu --check

# flags: refused with the value as typed
expect check_flag_range 1 'flag -b: 4294967297 is out of range' $gpu --check -b 4294967297
expect check_flag_range_steps 1 'flag -n: 4294967298 is out of range' $gpu --check -n 4294967298 -o "$TMP/o"
expect cpu_refuses_check 1 'flag --check .* is not supported by train_cpu' ./train_cpu --check
expect check_doc_token 1 'first token is 50256, not the document token 7 \(--doc-token\)' $gpu --check --doc-token 7
expect check_attention_path 1 "flag --attention: unknown path 'sm70'" $gpu --check --attention sm70
expect cpu_refuses_attention 1 'flag --attention .* is not supported by train_cpu' ./train_cpu --attention sm80

# a model too large for this machine: its parameter count and bytes, with or without --check
expect check_model_too_large 1 "model 'gpt2:d999' has [0-9]+ parameters .* GB" $gpu --check -e gpt2:d999
expect model_too_large_before_gpu 1 "model 'gpt2:d999' has [0-9]+ parameters" $gpu -e gpt2:d999
expect check_bad_descriptor 1 "unknown model descriptor 'gpt9:d2'" $gpu --check -e gpt9:d2

# a shard with a bad header
head -c 4096 /dev/zero >"$TMP/bad_000.bin"
expect check_bad_shard 1 "bad_000.bin" $gpu --check -i "$TMP/bad_*.bin"
expect bad_shard_before_gpu 1 "bad_000.bin" $gpu -i "$TMP/bad_*.bin"
expect check_no_shards 1 "no shard files match" $gpu --check -i "$TMP/none_*.bin"

# model files and checkpoints written by train_cpu (the same formats)
./train_cpu "${TINY[@]}" -x 4 -n 2 -nk 0 -v 0 -o "$TMP/run" >"$TMP/cpu.txt" 2>&1 \
    || echo "FAIL train_cpu_writes_checkpoints: $(tail -n 2 "$TMP/cpu.txt")"
expect check_model_file 0 'model: .*model_00000004.bin, bf16 model file' \
    $gpu --check "${TINY[@]:2}" -e "$TMP/run/model_00000004.bin"
cp "$TMP/run/model_00000004.bin" "$TMP/short.bin"
truncate -s 2000 "$TMP/short.bin"
expect check_truncated_model 1 'short.bin.*truncated' $gpu --check "${TINY[@]:2}" -e "$TMP/short.bin"
expect truncated_model_before_gpu 1 'short.bin.*truncated' $gpu "${TINY[@]:2}" -e "$TMP/short.bin"
expect check_resume 0 'resume: continuing from step 4' $gpu --check "${TINY[@]}" -o "$TMP/run" -y 1
cp -r "$TMP/run" "$TMP/torn"
truncate -s 500 "$TMP/torn/state_00000004_00000.bin"
expect check_torn_state_warned 0 'state_00000004_00000.bin.* unusable: file is truncated' \
    $gpu --check "${TINY[@]}" -o "$TMP/torn" -y 1
expect check_torn_state_older_used 0 'resume: continuing from step 2' $gpu --check "${TINY[@]}" -o "$TMP/torn" -y 1
mkdir -p "$TMP/empty"
expect check_empty_resume_dir 0 "resume: no usable checkpoint in '$TMP/empty'" \
    $gpu --check "${TINY[@]}" -o "$TMP/empty" -y 1

# without a GPU, a valid run stops only at the GPU, after the checks
if ! nvidia-smi -L >/dev/null 2>&1; then
    expect no_gpu_after_checks 1 'no CUDA GPU is visible: train_gpt needs one \(every input was checked' \
        $gpu "${TINY[@]}" -x 2
fi
