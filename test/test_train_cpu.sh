#!/usr/bin/env bash
# test_train_cpu.sh — ./train_cpu behaves as train_gpt does, on any machine:
#   - a diverging run (-l 1e6) skips its non-finite steps and ends after
#     --max-skips of them in a row with exit status 1 and a message;
#   - the step line carries tok/s and ETA, validation loss and the closing
#     "done:" line are printed;
#   - -o writes main.log (llm.c's line format) and checkpoints (model + state)
#     every -n steps, keeping the last -nk;
#   - -y 1 resumes bit-identically: a run resumed from step 4 of 8 ends with
#     the same model file and the same main.log as the uninterrupted run, and
#     a torn or bit-flipped newest state file is detected (warning) and the
#     older checkpoint is used instead, with the same result;
#   - a model too large for this machine's memory (gpt2:d999) is refused up
#     front with its parameter count and bytes, before any allocation.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
bin=./train_cpu
[ -x "$bin" ] || { echo "FAIL train_cpu_built: $bin is missing (make train_cpu)"; exit 1; }
TMP=$(mktemp -d /tmp/packlm_train_cpu.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# a tiny model over the GPT-2 vocabulary, on the embedded corpus
RUN=(-e "gpt2:d1,C=16,NH=2,T=16" -b 2 -t 16 -d 64 -v 4 -m 2)

# ---- divergence: skipped steps, then the end of the run
expect diverged_run_ends 1 'steps in a row had a non-finite loss or gradient norm \(--max-skips 3\)' \
    "$bin" "${RUN[@]}" -x 20 -l 1e6 --max-skips 3
expect diverged_steps_are_skipped 1 'are not finite: update skipped \(2 in a row\)' \
    "$bin" "${RUN[@]}" -x 20 -l 1e6 --max-skips 3
expect lr_inf_refused 1 'flag -l: inf is out of range' "$bin" "${RUN[@]}" -l inf

# ---- what a run prints and writes
full=$TMP/full
"$bin" "${RUN[@]}" -x 8 -o "$full" -n 4 -nk 0 >"$TMP/full.txt" 2>&1 && echo "PASS run_ok" \
    || echo "FAIL run_ok: $(tail -n 3 "$TMP/full.txt")"
expect step_line_has_rate_and_eta 0 '^step +8/8 \| loss [0-9.]+ \| lr .* \| norm [0-9.]+ \| [0-9.]+ ms \| [0-9]+ tok/s \| ETA 0m0[0-9]s' \
    cat "$TMP/full.txt"
expect val_loss_printed 0 '^step 8: val loss [0-9.]+' cat "$TMP/full.txt"
expect accumulation 0 '2 rows x 16 tokens x 2 micro-steps = 64 tokens per step' cat "$TMP/full.txt"
expect done_line 0 '^done: 8 steps, mean [0-9.]+ ms/step, [0-9]+ tokens/s; last train loss [0-9.]+, last val loss [0-9.]+' \
    cat "$TMP/full.txt"
expect main_log_format 0 '^s:7 trl:[0-9.]+ lr:[0-9.]+ norm:[0-9.]+$' cat "$full/main.log"
expect main_log_val 0 '^s:8 tel:[0-9.]+$' cat "$full/main.log"
expect checkpoints_written 0 '^model_00000004.bin model_00000008.bin state_00000004_00000.bin state_00000008_00000.bin $' \
    bash -c "cd '$full' && ls model_* state_* | tr '\n' ' '"
"$bin" "${RUN[@]}" -x 8 -o "$TMP/keep1" -n 2 -nk 1 >/dev/null 2>&1
expect checkpoints_pruned 0 '^model_00000008.bin state_00000008_00000.bin $' \
    bash -c "cd '$TMP/keep1' && ls model_* state_* | tr '\n' ' '"

# ---- resume: from step 4 (the step-8 checkpoint removed, main.log kept as it was)
same_as_full() { # NAME DIR: the resumed run's final model and log equal the uninterrupted run's
    if cmp -s "$2/model_00000008.bin" "$full/model_00000008.bin" && cmp -s "$2/main.log" "$full/main.log" &&
        cmp -s "$2/state_00000008_00000.bin" "$full/state_00000008_00000.bin"; then
        echo "PASS $1"
    else
        echo "FAIL $1: the resumed run's model, state or main.log differs from the uninterrupted run's"
    fi
}
resume_from() { # NAME DIR: resume the copy in DIR, check it ran from step 4
    "$bin" "${RUN[@]}" -x 8 -o "$2" -n 4 -nk 0 -y 1 >"$2.txt" 2>&1
    expect "$1_resumes_at_4" 0 'resume: continuing from step 4' cat "$2.txt"
}
cp -r "$full" "$TMP/cut"
rm "$TMP/cut"/*_00000008*
resume_from resume "$TMP/cut"
same_as_full resume_bit_identical "$TMP/cut"

cp -r "$full" "$TMP/torn"
state8=$TMP/torn/state_00000008_00000.bin
truncate -s $(($(stat -c %s "$state8") - 100)) "$state8"
resume_from torn "$TMP/torn"
expect torn_state_detected 0 'state_00000008|step 8.*unusable: file is truncated' cat "$TMP/torn.txt"
same_as_full torn_resume_bit_identical "$TMP/torn"

cp -r "$full" "$TMP/flip"
printf '\x55' | dd of="$TMP/flip/state_00000008_00000.bin" bs=1 seek=2000 conv=notrunc status=none
resume_from flip "$TMP/flip"
expect flipped_state_detected 0 'unusable: checksum mismatch' cat "$TMP/flip.txt"

# ---- sizes that cannot fit: refused before allocating, with the count and the bytes
expect too_large_refused 1 "model 'gpt2:d999' has [0-9]+ parameters .* takes [0-9.e+]+ GB .* more than this machine's" \
    "$bin" -e gpt2:d999
