#!/usr/bin/env bash
# parity.sh — train_gpt against the PyTorch reference (train_ref.py, fp32) on the
# GPU machine: same weights (the seeded init, rounded to bf16 as train_gpt does),
# same micro-batches (train_gpt --dump-batches), same AdamW / schedule / clipping.
#
# For gpt2:d12 (lr 6e-4) and a ~100M-parameter llama (L=10, C=768, 12 heads,
# 4 kv heads, F=2048; lr 3e-4), STEPS (200) steps of 32K tokens (four micro-steps
# of ROWS (8) rows of 1024 tokens), the fp32 reference attending through
# FlexAttention for the 200 steps (with one micro-step per step, as ATTENTION
# says: dense, SDPA with a dense mask and no compilation, or flex) and through
# dense masks for the one-step gradient checks:
#   - step-0 loss within 1e-3 relative,
#   - every parameter's gradient tensor within GRAD_BOUND (5e-2) norm-relative
#     error of the fp32 reference (train_gpt --dump-grads, bf16): at step 0,
#     and at every GRAD_CHECK_EVERY-th step (67: steps 67 and 134) from
#     train_gpt's own checkpoint of that step (resumed for one step with
#     --dump-grads; the reference loads the same model file and micro-batches),
#   - mean |loss difference| over all steps <= 0.01 and no divergence trend
#     (least-squares growth of |difference| over the run <= 0.01),
# and, for scale, the reference against itself: the same run in bf16 autocast
# with varlen_attn (standard PyTorch mixed precision) vs its fp32 run, printed,
# not bounded, and train_gpt against itself with half-size micro-batches (-b ROWS/2:
# the same rows, another summation order). One PNG per model with the four curves
# and their differences from the fp32 reference.
# Why 32K-token steps: at 8K tokens the per-step losses are noisy enough that
# two valid numerics drift apart by about 0.01 or more (llama: ours vs fp32
# 0.016, PyTorch bf16 vs fp32 0.032; gpt2: 0.0071 and, after two kernels changed
# their summation order, 0.0102, PyTorch bf16 vs fp32 0.052;
# dev/notes/reference.md). MICRO_STEPS=1 gives the 8K-token setting. For gpt2:d12
# 32K does not help: ours vs fp32 0.0102 (seed 1337) and 0.0158 (SEED=2), while
# train_gpt against its own -b 4 run differs by 0.0054 / 0.0138 and PyTorch bf16
# against fp32 by 0.055 / 0.029: for this model the 0.01 bound lies inside the
# spread of valid bf16 numerics, so its FAIL there is not evidence of a bug.
# Prints PASS/FAIL lines; exit status 1 on any FAIL.
#
# usage: dev/reference/parity.sh [OUTDIR]   env: DATA (train shard glob), STEPS, ROWS, MODELS,
#        MICRO_STEPS, ATTENTION, GRAD_CHECK_EVERY, SEED (1337: the init and data order), GPU_ARCH
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
OUT_DIR=${1:-build/parity}
DATA=${DATA:-data/fortunes_train_*.bin}
STEPS=${STEPS:-200}
GRAD_BOUND=${GRAD_BOUND:-5e-2}
GRAD_CHECK_EVERY=${GRAD_CHECK_EVERY:-67}
MODELS=${MODELS:-"gpt2 llama"}
ATTENTION=${ATTENTION:-dense}
SEED=${SEED:-1337}
declare -A DESCRIPTOR=([gpt2]=gpt2:d12 [llama]="llama:1B,L=10,C=768,NH=12,NKV=4,F=2048,T=1024")
declare -A LR=([gpt2]=6e-4 [llama]=3e-4)
MICRO_STEPS=${MICRO_STEPS:-4}
ROWS=${ROWS:-8}
[ $((ROWS % 2)) -eq 0 ] || { echo "parity: ROWS must be even (the split run uses ROWS/2), got $ROWS"; exit 1; }
for name in $MODELS; do
    [ -n "${DESCRIPTOR[$name]:-}" ] || { echo "parity: unknown model '$name' (known: ${!DESCRIPTOR[*]})"; exit 1; }
done
mkdir -p "$OUT_DIR"
make -s train_gpt GPU_ARCH="${GPU_ARCH:-90a}" >"$OUT_DIR/build.log" 2>&1 || { cat "$OUT_DIR/build.log"; exit 1; }

tokens=$((ROWS * 1024 * MICRO_STEPS))
half_rows=$((ROWS / 2)) # the split run: the same rows as twice as many micro-batches
attention=$ATTENTION
[ "$MICRO_STEPS" -eq 1 ] || attention=flex # 800 dense fp32 micro-steps take ~8 minutes
# ours / ref ARGS...: train_gpt / the reference with this model's settings ("common") and ARGS
ours() { ./train_gpt "${common[@]}" -i "$DATA" -j "" -v 0 -s 0 -b "$ROWS" -t 1024 "$@"; }
ref() { python3 dev/reference/train_ref.py "${common[@]}" --grad-bound "$GRAD_BOUND" "$@"; }
failed=0
report() { # report NAME RC WHY
    if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; failed=$((failed + 1)); fi
}
for name in $MODELS; do
    W=$OUT_DIR/$name
    rm -rf "$W"
    mkdir -p "$W"
    common=(-e "${DESCRIPTOR[$name]}" -d "$tokens" -x "$STEPS" -u 20 -q 0.1 -k cosine -c 0.1 --grad-clip 1.0
        --seed "$SEED" -l "${LR[$name]}")

    ours -o "$W/ours" -n "$GRAD_CHECK_EVERY" -nk 0 --dump-batches "$W/batches.bin" \
        --dump-grads "$W/grads_ours.bin" >"$W/ours.txt" 2>&1
    rc=$?
    report "${name}_train_gpt_runs" $rc "exit status $rc, see $W/ours.txt"
    [ $rc -eq 0 ] || { tail -n 5 "$W/ours.txt"; continue; }
    ref --batches "$W/batches.bin" --attention "$attention" -o "$W/ref" --compare-grads "$W/grads_ours.bin" \
        >"$W/ref.txt" 2>&1
    rc=$?
    sed -n '/^tensor/,/^step /p' "$W/ref.txt" | grep -v '^step '
    report "${name}_gradients_step_0" $rc "a tensor is over $GRAD_BOUND or train_ref failed, see $W/ref.txt"

    # later steps: both sides start from train_gpt's checkpoint of step S
    for ((S = GRAD_CHECK_EVERY; S < STEPS; S += GRAD_CHECK_EVERY)); do
        R=$W/at_$S
        mkdir -p "$R"
        cp "$W/ours/$(printf 'model_%08d.bin' "$S")" "$W/ours/$(printf 'state_%08d' "$S")"_*.bin "$R/"
        ours -x $((S + 1)) -o "$R" -y 1 --dump-batches "$R/batches.bin" --dump-grads "$R/grads_ours.bin" \
            >"$R/ours.txt" 2>&1 &&
            ref -e "$R/$(printf 'model_%08d.bin' "$S")" -x 1 --batches "$R/batches.bin" --attention dense \
                --compare-grads "$R/grads_ours.bin" >"$R/ref.txt" 2>&1
        rc=$?
        echo "step $S: train_gpt $(grep -oE 'loss [0-9.]+ .*norm [0-9.]+' "$R/ours.txt" | tail -n 1 | sed 's/| lr [^|]*| //'), pytorch $(grep -oE 'loss [0-9.]+ .*norm [0-9.]+' "$R/ref.txt" | sed 's/| lr [^|]*| //')"
        grep -E ' OVER$' "$R/ref.txt"
        report "${name}_gradients_step_$S" $rc "a tensor is over $GRAD_BOUND or a run failed, see $R/*.txt"
        rm -f "$R"/*.bin
    done

    # the reference against itself: PyTorch bf16 autocast (varlen_attn) vs fp32
    ref --batches "$W/batches.bin" --dtype bf16 --attention varlen -o "$W/ref_bf16" >"$W/ref_bf16.txt" 2>&1 ||
        { echo "FAIL ${name}_reference_bf16: see $W/ref_bf16.txt"; failed=$((failed + 1)); }

    # train_gpt against itself: the same rows, summed as twice as many half-size micro-batches
    ours -b "$half_rows" -o "$W/ours_split" >"$W/ours_split.txt" 2>&1 ||
        { echo "FAIL ${name}_train_gpt_split: see $W/ours_split.txt"; failed=$((failed + 1)); }

    python3 scripts/compare_loss.py "$W/ours/main.log" "$W/ref/main.log" --labels train_gpt,pytorch \
        --max-mean-diff 0.01 --max-step0-rel 1e-3 --max-trend 0.01
    rc=$?
    report "${name}_loss_curves" $rc "see the lines above"
    echo "for scale (no bound), other valid numerics against the fp32 reference and against train_gpt:"
    python3 scripts/compare_loss.py "$W/ref/main.log" "$W/ref_bf16/main.log" "$W/ours/main.log" \
        "$W/ours_split/main.log" --labels pytorch_fp32,pytorch_bf16,train_gpt,train_gpt_b$half_rows \
        --png "$OUT_DIR/parity_$name.png" | grep -v '^wrote'
    python3 scripts/compare_loss.py "$W/ours/main.log" "$W/ours_split/main.log" \
        --labels train_gpt,train_gpt_b$half_rows
    rm -f "$W/batches.bin" "$W"/ours/*.bin "$W"/ours_split/*.bin
done
echo "parity: $failed failed"
[ "$failed" -eq 0 ]
