#!/usr/bin/env bash
# run_all_checks.sh — one device call that checks the whole tree on a GPU:
# builds everything for the local card, runs `make test` (CPU + GPU tests),
# the kernel and attention dev programs (checks only, no peers), and the
# README's main command for a bounded time. Logs under $OUT (packed into
# logs.tgz when they are more than the device tool brings back) or build/.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-build}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/card.txt"
make -j16 GPU_ARCH=90a train_gpt train_cpu tools dev build/test/test_attention build/test/test_kernels \
    build/test/test_train_gpt build/test/test_dist >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
FUZZ_SECONDS=5 make GPU_ARCH=90a test >"$out/make_test.log" 2>&1; rc_test=$?
grep -E '^(== |FAIL|   [0-9]+ passed)' "$out/make_test.log" | grep -B1 -E 'FAIL|failed' | grep -v ' 0 failed' | head -40
(for p in dev/cuda/bin/*; do
    case "$p" in */attention_* | */matmul_algos) args=--no-bench ;; *) args= ;; esac  # the other kernel programs take no arguments
    echo "== $p"; "$p" $args 2>&1 | tail -n 3; done) >"$out/dev_programs.log" 2>&1
timeout 150 make GPU_ARCH=90a train >"$out/make_train.log" 2>&1; rc_train=$?
echo "---- make train (tail)"; grep -E 'val loss|^step +(1|50|100|150|200)/|done:|sample:' "$out/make_train.log" | cut -c1-160 | tail -n 12
echo "---- dev programs"; grep -E 'passed|failed|error' "$out/dev_programs.log" | head -20
echo "---- summary on $(cat "$out/card.txt")"
echo "make test: $(tail -n 1 "$out/make_test.log") (rc $rc_test); make train rc $rc_train"
if [ -n "${OUT:-}" ]; then dev/pack_logs.sh "$out"; fi
