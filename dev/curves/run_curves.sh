#!/usr/bin/env bash
# run_curves.sh — the real-corpus loss curves of dev/curves/: gpt2:d12 trained on
# the linux-source corpus (dev/data/build_linux_docs_corpus.sh, 34.6M tokens)
# several ways with everything else equal, then one PNG of train and val loss:
#
#   bestfit_mask   --packing bestfit --doc-mask 1   (the default)
#   chunk_mask     --packing chunk   --doc-mask 1
#   bestfit_nomask --packing bestfit --doc-mask 0   (plain causal over each row)
#   bestfit_mask_b16  bestfit_mask with -b 16 (and -m 32: the same val rows):
#                  two micro-steps of 16 rows per step instead of one of 32. The
#                  same rows in the same order (the row stream does not depend on
#                  B), so the run differs only in how the bf16 gradient is summed, the
#                  kind of change a different card, GPU count or build makes:
#                  its distance from bestfit_mask is the rerun tolerance.
#   bestfit_mask_b8   the same with -b 8 (and -m 64): eight micro-steps of 8 rows.
#   bestfit_mask_seed2  bestfit_mask with --seed 2: another init and training-row
#                  order (the val rows are never shuffled): the seed-to-seed spread.
#
# Each run: CURVE_STEPS (1000) steps of 64 x 1024 tokens (65.5M tokens, 1.95
# epochs of the 33.6M training tokens), lr 6e-4, 40 warmup steps, cosine to 10%,
# val loss on 16 val batches every 25 steps.
# RUNS picks the runs (default: all six; a device call fits three), so the work
# can be spread over calls; every call ends by comparing and plotting whatever
# runs OUTDIR holds. With RERUN_SECONDS > 0, bestfit_mask is also started again
# for that long and its logged steps are compared with the first run's
# (the same command on the same card: the difference must be 0).
#
# usage: dev/curves/run_curves.sh [OUTDIR]   env CURVE_STEPS, RUNS, RERUN_SECONDS (0)
#        (GPU machine; needs build/linux_docs/ or
#        build/linux_docs.tar.xz, and a built ./train_gpt)
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
OUT_DIR=${1:-build/curves}
CORPUS=build/linux_docs
STEPS=${CURVE_STEPS:-1000}
ALL_RUNS="bestfit_mask chunk_mask bestfit_nomask bestfit_mask_b16 bestfit_mask_b8 bestfit_mask_seed2"
RUNS=${RUNS:-$ALL_RUNS}
RERUN_SECONDS=${RERUN_SECONDS:-0}
declare -A FLAGS=(
    [bestfit_mask]="--packing bestfit --doc-mask 1"
    [chunk_mask]="--packing chunk --doc-mask 1"
    [bestfit_nomask]="--packing bestfit --doc-mask 0"
    [bestfit_mask_b16]="--packing bestfit --doc-mask 1 -b 16 -m 32"
    [bestfit_mask_b8]="--packing bestfit --doc-mask 1 -b 8 -m 64"
    [bestfit_mask_seed2]="--packing bestfit --doc-mask 1 --seed 2")
for name in $RUNS; do
    [ -n "${FLAGS[$name]:-}" ] || { echo "run_curves: unknown run '$name' (known: ${!FLAGS[*]})"; exit 1; }
done
mkdir -p "$OUT_DIR"
[ -d "$CORPUS" ] || tar -xJf "$CORPUS.tar.xz" -C "$(dirname "$CORPUS")" ||
    { echo "run_curves: no $CORPUS and no $CORPUS.tar.xz (dev/data/build_linux_docs_corpus.sh)"; exit 1; }

LAUNCH=
train() { # train NAME [extra flags]; LAUNCH prefixes the command
    local name=$1
    shift
    $LAUNCH ./train_gpt -e gpt2:d12 -i "$CORPUS/linux_docs_train_*.bin" -j "$CORPUS/linux_docs_val_*.bin" \
        -b 32 -t 1024 -d 65536 -x "$STEPS" -u 40 -l 6e-4 -q 0.1 -k cosine -c 0.1 -v 25 -m 16 -s 0 \
        --seed 1337 -o "$OUT_DIR/$name" "$@" >"$OUT_DIR/$name.txt" 2>&1
}

for name in $RUNS; do
    echo "== $name"
    # shellcheck disable=SC2086 # FLAGS holds several words
    train "$name" ${FLAGS[$name]} || { echo "run_curves: $name failed:"; tail -n 5 "$OUT_DIR/$name.txt"; }
    grep -E '^step .*val loss' "$OUT_DIR/$name.txt" | tail -n 1
done

if [ "$RERUN_SECONDS" -gt 0 ]; then
    echo "== rerun of bestfit_mask for ${RERUN_SECONDS}s"
    rm -rf "$OUT_DIR/rerun"
    # shellcheck disable=SC2086
    LAUNCH="timeout $RERUN_SECONDS" train rerun ${FLAGS[bestfit_mask]}
    python3 scripts/compare_loss.py "$OUT_DIR/bestfit_mask/main.log" "$OUT_DIR/rerun/main.log" \
        --labels first,rerun | tail -n 1
fi

# compare and plot every finished run against bestfit_mask
logs=() labels=()
for name in $ALL_RUNS; do
    [ -s "$OUT_DIR/$name/main.log" ] && logs+=("$OUT_DIR/$name/main.log") && labels+=("$name")
done
if [ ${#logs[@]} -gt 0 ]; then
    python3 scripts/compare_loss.py "${logs[@]}" --labels "$(IFS=,; echo "${labels[*]}")" \
        --png "$OUT_DIR/linux_docs_gpt2_d12.png"
fi
