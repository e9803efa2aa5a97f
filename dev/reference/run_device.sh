#!/usr/bin/env bash
# run_device.sh — the reference area's GPU-machine work in one command:
# build train_gpt once, then run the named parts, each independent of the others:
#
#   parity   dev/reference/parity.sh on the linux-source corpus (PNGs + PASS/FAIL)
#   bench    dev/bench_train.sh (ours vs the PyTorch peer, one table)
#   curves   dev/curves/run_curves.sh (real-corpus curves; all six runs take ~15 minutes:
#            pass RUNS="..." to give each call at most three)
#   vector   test/test_loss_vector.sh --record, then the test itself (determinism)
#
# Logs and plots are gathered into $OUT/results.tgz (one file comes back)
# after every part, so a call stopped at its time limit keeps the parts done;
# each part's summary is printed when it ends.
#
# usage: dev/reference/run_device.sh PART...   (env OUT: where results.tgz goes)
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
OUT=${OUT:-build/device_out}
WORK=build/reference_work
mkdir -p "$OUT" "$WORK"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
make -s train_gpt GPU_ARCH=90a >"$WORK/build.log" 2>&1 || { tail -n 20 "$WORK/build.log"; exit 1; }
if [ ! -d build/linux_docs ] && [ -f build/linux_docs.tar.xz ]; then tar -xJf build/linux_docs.tar.xz -C build; fi
export PYTHONUNBUFFERED=1

# everything small (logs, tables, plots; no shards, batches or checkpoints) travels back
gather() {
    (cd "$WORK" && find . -type f \( -name '*.txt' -o -name '*.log' -o -name '*.png' \) -size -4M -print0 |
        tar --null -czf "$OUT/results.tgz" -T -)
}
summary() { # summary PART
    echo "==== $1"
    case $1 in
    parity) grep -E '^(PASS|FAIL|tensor|[a-z_0-9]+ +[0-9.e+-]+ +[0-9.e+-]+ +(ok|OVER)|.* vs train_gpt:)' "$WORK/parity.txt" ;;
    bench) grep -E '^(card:|workload |gpt2-b|llama1b )' "$WORK/bench.txt" ;;
    *) tail -n 12 "$WORK/$1.txt" ;;
    esac
}

for part in "$@"; do
    start=$SECONDS
    case $part in
    parity) DATA="build/linux_docs/linux_docs_train_*.bin" dev/reference/parity.sh "$WORK/parity" \
        >"$WORK/parity.txt" 2>&1 ;;
    bench) dev/bench_train.sh "$WORK/bench" >"$WORK/bench.txt" 2>&1 ;;
    curves) dev/curves/run_curves.sh "$WORK/curves" >"$WORK/curves.txt" 2>&1 ;;
    vector) { test/test_loss_vector.sh --record && test/test_loss_vector.sh; } >"$WORK/vector.txt" 2>&1 ;;
    *) echo "run_device: unknown part '$part' (parity bench curves vector)"; continue ;;
    esac
    echo "== $part: exit $?, $((SECONDS - start)) s"
    gather
    summary "$part"
done
