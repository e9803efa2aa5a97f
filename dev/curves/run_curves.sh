#!/usr/bin/env bash
# run_curves.sh — the real-corpus loss curves of dev/curves/: gpt2:d12 trained on
# the linux-source corpus (dev/data/build_linux_docs_corpus.sh, 34.6M tokens)
# three ways with everything else equal, then one PNG of train and val loss:
#
#   bestfit_mask   --packing bestfit --doc-mask 1   (the default)
#   chunk_mask     --packing chunk   --doc-mask 1
#   bestfit_nomask --packing bestfit --doc-mask 0   (plain causal over each row)
#
# Each run: 300 steps of 64 x 1024 tokens (19.7M tokens, 0.59 epoch), lr 6e-4,
# 40 warmup steps, cosine to 10%, val loss on 16 val batches every 25 steps,
# --deterministic 1. Then the first run is started again for RERUN_SECONDS and
# its logged steps are compared with the first run's: the rerun tolerance.
#
# usage: dev/curves/run_curves.sh [OUTDIR]   env CURVE_STEPS (300), RERUN_SECONDS (20)
#        (GPU machine; needs build/linux_docs/ or
#        build/linux_docs.tar.xz, and a built ./train_gpt)
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
OUT_DIR=${1:-build/curves}
CORPUS=build/linux_docs
STEPS=${CURVE_STEPS:-300}
RERUN_SECONDS=${RERUN_SECONDS:-20}
mkdir -p "$OUT_DIR"
[ -d "$CORPUS" ] || tar -xJf "$CORPUS.tar.xz" -C "$(dirname "$CORPUS")" ||
    { echo "run_curves: no $CORPUS and no $CORPUS.tar.xz (dev/data/build_linux_docs_corpus.sh)"; exit 1; }

LAUNCH=
train() { # train NAME PACKING DOC_MASK [extra flags]; LAUNCH prefixes the command
    local name=$1 packing=$2 mask=$3
    shift 3
    $LAUNCH ./train_gpt -e gpt2:d12 -i "$CORPUS/linux_docs_train_*.bin" -j "$CORPUS/linux_docs_val_*.bin" \
        -b 32 -t 1024 -d 65536 -x "$STEPS" -u 40 -l 6e-4 -q 0.1 -k cosine -c 0.1 -v 25 -m 16 -s 0 \
        --seed 1337 --deterministic 1 --packing "$packing" --doc-mask "$mask" -o "$OUT_DIR/$name" "$@" \
        >"$OUT_DIR/$name.txt" 2>&1
}

for run in "bestfit_mask bestfit 1" "chunk_mask chunk 1" "bestfit_nomask bestfit 0"; do
    set -- $run
    echo "== $1"
    train "$@" || { echo "run_curves: $1 failed:"; tail -n 5 "$OUT_DIR/$1.txt"; }
    grep -E '^(done|step .*val loss)' "$OUT_DIR/$1.txt" | tail -n 2
done

echo "== rerun of bestfit_mask for ${RERUN_SECONDS}s"
rm -rf "$OUT_DIR/rerun"
LAUNCH="timeout $RERUN_SECONDS" train rerun bestfit 1
python3 scripts/compare_loss.py "$OUT_DIR/bestfit_mask/main.log" "$OUT_DIR/rerun/main.log" \
    --labels first,rerun | tail -n 1

python3 scripts/compare_loss.py "$OUT_DIR"/{bestfit_mask,chunk_mask,bestfit_nomask}/main.log \
    --labels bestfit_mask,chunk_mask,bestfit_nomask --png "$OUT_DIR/linux_docs_gpt2_d12.png"
