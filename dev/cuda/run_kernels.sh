#!/usr/bin/env bash
# run_kernels.sh — build and run every kernel check and benchmark of the
# kernels area in one go (one device call): test/test_kernels.cu under
# compute-sanitizer and plainly, then each dev/cuda program (checks, then a
# benchmark table). Logs go to $OUT (or build/kernel-logs); the last lines
# printed are the PASS/FAIL totals and the benchmark tables.
#
# usage: dev/cuda/run_kernels.sh [GPU_ARCH]     (default 90a: H100/H200)
set -u
arch=${1:-90a}
if [ "$arch" = "--help" ] || [ "$arch" = "-h" ]; then
    sed -n '2,8p' "$0"
    exit 0
fi
out=${OUT:-build/kernel-logs}
mkdir -p "$out"
programs="matmul layernorm rmsnorm rope elementwise encoder classifier optimizer"
targets="build/test/test_kernels"
for p in $programs; do targets="$targets dev/cuda/bin/$p"; done
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
if ! make -j16 GPU_ARCH="$arch" $targets >"$out/build.log" 2>&1; then
    echo "FAIL build: see $out/build.log"
    tail -n 40 "$out/build.log"
    exit 1
fi
status=0
echo "== compute-sanitizer memcheck: test_kernels"
timeout 150 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 build/test/test_kernels \
    >"$out/sanitizer.log" 2>&1 || { echo "FAIL sanitizer: exit $?"; status=1; }
grep -E "ERROR SUMMARY|LEAK SUMMARY|^FAIL" "$out/sanitizer.log" | head -n 20
log="$out/kernels.log"
: >"$log"
for p in build/test/test_kernels $(for p in $programs; do echo dev/cuda/bin/$p; done); do
    echo "== $p" | tee -a "$log"
    "$p" >"$out/one.log" 2>&1 || status=1
    cat "$out/one.log" >>"$log"
    grep -E "^FAIL|passed," "$out/one.log"
done
rm -f "$out/one.log"
# the benchmark tables: from each header line to the program's closing totals
sed -n '/us\/call/,/passed,/p' "$log" | grep -v "passed,"
exit $status
