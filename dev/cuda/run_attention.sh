#!/usr/bin/env bash
# run_attention.sh — the attention kernel's whole device session in one call:
# build the programs for the card, check forward and backward against the CPU
# reference (attention_backward, on every kernel path the card runs), run
# compute-sanitizer memcheck, racecheck and synccheck on a small case,
# benchmark ours, then time the PyTorch peers on the same packed lengths and
# print the comparison table last.
#
# usage: dev/cuda/run_attention.sh [--no-peer] [--no-sanitizer] [--test] [--ncu] [--seeds=S1,S2]
#   --ncu       also profile the backward kernels (sm80, sm90) and the sm90 forward once on the
#               T=8192 shape, with the top stall locations (ncu_*.log)
#   --seeds=..  also benchmark ours and the peers on the packed lengths of
#               these length seeds (the 8192 shape holds few documents, so
#               one draw of lengths can favour one implementation)
#   logs go to $OUT (the device tool's output folder; packed into logs.tgz when
#   they are more than it brings back, dev/pack_logs.sh) or build/attention-run
set -u -o pipefail
peer=1 sanitizer=1 gputest=0 profile=0 seeds=
for arg in "$@"; do
    case "$arg" in
        --no-peer) peer=0 ;;
        --no-sanitizer) sanitizer=0 ;;
        --test) gputest=1 ;;
        --ncu) profile=1 ;;
        --seeds=*) seeds=${arg#--seeds=} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "run_attention.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
out=${OUT:-build/attention-run}
reports_dir=build/attention-reports # inputs of the peer script, kept out of $OUT (few files come back)
mkdir -p "$out" "$reports_dir"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
arch=${GPU_ARCH:-90a}
targets="dev/cuda/bin/attention_forward dev/cuda/bin/attention_backward"
[ "$gputest" = 1 ] && targets="$targets build/test/test_attention"
make -j4 $targets GPU_ARCH="$arch" NO_MULTI_GPU=1 NO_MPI=1 >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; exit 1; }
status=0
if [ "$gputest" = 1 ]; then
    build/test/test_attention >"$out/test_attention.log" 2>&1 || status=1
    grep -E '^(FAIL|[0-9]+ passed)' "$out/test_attention.log"
fi
if [ "$sanitizer" = 1 ]; then
    for tool in memcheck racecheck synccheck; do
        compute-sanitizer --tool $tool --error-exitcode 3 dev/cuda/bin/attention_backward --small \
            >"$out/sanitizer_$tool.log" 2>&1 || status=1
        echo "compute-sanitizer $tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.log" | tail -n 1)"
    done
fi
dev/cuda/bin/attention_backward --report "$reports_dir/report.txt" >"$out/backward.log" 2>&1 || status=1
grep -E '^(FAIL|  |[0-9]+ passed)' "$out/backward.log"
sed -n '/^benchmark/,$p' "$out/backward.log"
if [ "$profile" = 1 ]; then
    for kernel in attention_backward_kv_kernel attention_backward_q_kernel attention_forward_sm90_kernel \
        attention_backward_sm90_kernel; do
        ncu --clock-control none -k "regex:$kernel" --launch-skip 2 --launch-count 1 --section SpeedOfLight \
            --section Occupancy --section WarpStateStats --section LaunchStats --section ComputeWorkloadAnalysis \
            --section MemoryWorkloadAnalysis --section SourceCounters \
            dev/cuda/bin/attention_backward --bench-only 2 >"$out/ncu_$kernel.log" 2>&1
        echo "ncu $kernel: $(grep -E '^ +(Duration|Compute \(SM\) Throughput|Achieved Occupancy)' "$out/ncu_$kernel.log" | tr -s ' ' | tr '\n' ';')"
    done
fi
reports="$reports_dir/report.txt"
for seed in ${seeds//,/ }; do
    dev/cuda/bin/attention_backward --bench-only -1 --length-seed "$seed" --report "$reports_dir/report_$seed.txt" \
        >/dev/null 2>&1 || status=1
    reports="$reports $reports_dir/report_$seed.txt"
done
if [ "$peer" = 1 ]; then
    for report in $reports; do
        log="$out/peer_$(basename "$report" .txt).log"
        PYTHONUNBUFFERED=1 python3 dev/cuda/bench_attention_peer.py "$report" >"$log" 2>&1 || status=1
        echo "== peers on $(basename "$report")"
        sed -n '/^attention on/,$p' "$log"
    done
fi
if [ -n "${OUT:-}" ]; then dev/pack_logs.sh "$out"; fi
exit $status
