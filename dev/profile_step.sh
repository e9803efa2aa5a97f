#!/usr/bin/env bash
# profile_step.sh — where one training step's GPU time goes: every kernel of a
# one-step train_gpt run (-x 1: the step, plus the one kernel that starts the
# master weights, left out) under Nsight Compute with the card's own clocks
# (ncu --clock-control none, metric gpu__time_duration), summed per kernel:
#
#   kernel | calls | ms | % of kernel time
#
# then the GEMM share: cuBLAS kernels' time, and the throughput they reach
# (GEMM_TFLOP, the step's matmul FLOPs = 6 x matmul parameters x tokens, over
# their time) against cuBLAS's peak on the same card, measured here on a
# 8192^3 bf16 matmul through PyTorch (left out when torch is missing).
# ncu serialises kernels, so the sum of kernel times is a lower bound of the
# step; the gap to the step's wall time (from an unprofiled run) is host time
# and launch gaps.
#
# usage: dev/profile_step.sh NAME GEMM_TFLOP OUTDIR TRAIN_GPT_ARGS...   (GPU machine, ncu on PATH)
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
[ $# -ge 4 ] || { echo "usage: dev/profile_step.sh NAME GEMM_TFLOP OUTDIR TRAIN_GPT_ARGS..."; exit 1; }
name=$1 gemm_tflop=$2 out=$3
shift 3
command -v ncu >/dev/null || { echo "profile_step: ncu not found"; exit 1; }
mkdir -p "$out"
csv=$out/profile_$name.csv
ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base --print-kernel-base function \
    --log-file "$csv" ./train_gpt "$@" -x 1 -v 0 -s 0 >"$out/profile_$name.log" 2>&1 ||
    { echo "profile_step: ncu failed, see $out/profile_$name.log"; tail -n 5 "$out/profile_$name.log"; exit 1; }

peak=$(python3 -c '
import torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(20):
    a @ b
end.record()
torch.cuda.synchronize()
print(f"{20 * 2 * 8192 ** 3 / (start.elapsed_time(end) * 1e-3) / 1e12:.0f}")' 2>/dev/null) || peak=""

echo "== $name: one step, per kernel (ncu, card clocks) on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
awk -F'","' -v gemm_tflop="$gemm_tflop" -v peak="$peak" '
    /^"ID"/ { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } next }
    !("Kernel Name" in col) || !/^"/ { next }
    {
        kernel = $col["Kernel Name"]; value = $col["Metric Value"]
        gsub(/[",]/, "", value)
        if (kernel == "bf16_to_float_kernel") next  # the master weights start, before the step
        ms[kernel] += value / 1e6; calls[kernel]++; total += value / 1e6
        if (kernel ~ /gemm|nvjet|xmma|cutlass|cublas/) gemm += value / 1e6
    }
    END {
        if (total == 0) { print "profile_step: no kernel times in the ncu log"; exit 1 }
        printf "%-48s | %5s | %8s | %6s\n", "kernel", "calls", "ms", "%"
        n = 0
        for (k in ms) order[n++] = k
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (ms[order[j]] > ms[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
        for (i = 0; i < n; i++) printf "%-48s | %5d | %8.3f | %5.1f%%\n", substr(order[i], 1, 48), calls[order[i]], ms[order[i]], 100 * ms[order[i]] / total
        printf "%-48s | %5s | %8.3f | %5.1f%%\n", "all kernels", "", total, 100
        printf "GEMM (cuBLAS kernels): %.3f ms = %.1f%% of kernel time; %.1f TFLOP/s", gemm, 100 * gemm / total, gemm_tflop / (gemm * 1e-3)
        if (peak != "") printf " = %.0f%% of the cuBLAS peak measured here (%s TFLOP/s, 8192^3 bf16)", 100 * gemm_tflop / (gemm * 1e-3) / peak, peak
        printf "\n"
    }' "$csv"
