#!/usr/bin/env bash
# run_trainer_checks.sh — everything the trainer needs a GPU for, in one go
# (one device call): build, the GPU tests, the bit-identical resume check of
# ./train_gpt -y 1, a short default run, a quick throughput table, activation
# recompute (-r 0/1/2: tokens/s and memory), long context (T=8192), and the
# per-kernel profile of one step (dev/profile_step.sh).
#
# usage: dev/run_trainer_checks.sh [tests|resume|failures|train|bench|recompute|longctx|profile]...
#        (default: all)
# Logs go to $OUT (packed into logs.tgz when they are more than the device tool
# brings back, dev/pack_logs.sh) or ./log/trainer; the table is printed last.
# Throughput runs use synthetic shards (dev/data/synth_shards.py: log-normal
# document lengths, median ~400, mean ~650 tokens), document-masked unless noted.
set -u
all_parts="tests resume failures train bench recompute longctx profile"
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
parts=${*:-$all_parts}
for part in $parts; do # refuse a misspelt part before building or running anything
    case " $all_parts " in *" $part "*) ;; *) echo "run_trainer_checks: unknown part '$part' (parts: $all_parts)"; exit 2 ;; esac
done
device_out=${OUT:-} # set by the device tool: its logs are packed at the end (dev/pack_logs.sh)
OUT=${OUT:-log/trainer}
mkdir -p "$OUT"
status=0
table="$OUT/table.txt"
: >"$table"

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$table"
make -j8 train_gpt build/test/test_train_gpt GPU_ARCH=90a >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }

synth=/tmp/synth
if [ ! -e $synth/synth_val_000000.bin ]; then
    python3 dev/data/synth_shards.py --out $synth --tokens 6000000 --shard-tokens 3000000 >"$OUT/synth.log" 2>&1 ||
        { tail "$OUT/synth.log"; exit 1; }
fi
data="-i $synth/synth_train_*.bin -j $synth/synth_val_*.bin"

# bench NAME FLAGS...: a run long enough for 2 s of warm-up and 5 or more steps after it; one row of
# the median step after the warm-up (dev/median_step.sh: at the clock the card keeps under load), with
# the model's GPU memory, the card's memory in use at the end, what -r saved, and the card's median
# SM clock and power over the run's loaded samples (nvidia-smi every 200 ms, those above 200 W: the
# steps, not the setup; "-" where nvidia-smi gives none)
loaded_median() { # COLUMN FILE: median of a column of nvidia-smi's csv over the samples above 200 W ("-": none)
    awk -F', *' -v col="$1" '$2 + 0 > 200 {printf "%d\n", $col}' "$2" | sort -n |
        awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : "-"}'
}
bench_header() {
    printf "%-44s %10s %8s %7s %9s %9s %8s %5s %4s\n" workload tokens/s ms/step MFU "model GiB" "card GiB" "-r saves" \
        MHz W | tee -a "$table"
}
bench() {
    nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 200 >"$OUT/bench_$1.smi" 2>/dev/null &
    local sampler=$!
    ./train_gpt $data -v 0 -s 0 -u 1 -l 3e-4 "${@:2}" >"$OUT/bench_$1.log" 2>&1
    local rc=$?
    kill $sampler 2>/dev/null
    wait $sampler 2>/dev/null
    [ $rc -eq 0 ] || { echo "$1 failed" | tee -a "$table"; tail -3 "$OUT/bench_$1.log"; return; }
    local median_line ms tok mfu model card saved
    if ! median_line=$(dev/median_step.sh "$OUT/bench_$1.log"); then
        echo "$1: fewer than 5 steps after the 2 s warm-up (dev/median_step.sh): raise its -x" | tee -a "$table"
        status=1
        return
    fi
    ms=$(echo "$median_line" | awk -F'|' '{print $5+0}')
    tok=$(echo "$median_line" | awk -F'|' '{print $6+0}')
    mfu=$(echo "$median_line" | sed 's/.*MFU \([^ ]*\).*/\1/')
    model=$(sed -n 's/.*GPU memory: model \([0-9.]*\) GiB.*/\1/p' "$OUT/bench_$1.log")
    card=$(sed -n 's/.*in use on the card \([0-9.]*\) GiB.*/\1/p' "$OUT/bench_$1.log")
    saved=$(sed -n 's/.*-r [0-9] saves \([0-9.]*\) GiB.*/\1/p' "$OUT/bench_$1.log")
    local mhz watts
    mhz=$(loaded_median 1 "$OUT/bench_$1.smi")
    watts=$(loaded_median 2 "$OUT/bench_$1.smi")
    printf "%-44s %10.0f %8.1f %7s %9s %9s %8s %5s %4s\n" "$1" "$tok" "$ms" "$mfu" "$model" "$card" "${saved:--}" \
        "$mhz" "$watts" | tee -a "$table"
}

for part in $parts; do
case $part in
tests)
    build/test/test_train_gpt >"$OUT/test_train_gpt.log" 2>&1 || status=1
    grep -E "^(PASS|FAIL)|relative|step" "$OUT/test_train_gpt.log" | grep -v "^PASS" | head -60
    echo "test_train_gpt: $(grep -c ^PASS "$OUT/test_train_gpt.log") passed, $(grep -c ^FAIL "$OUT/test_train_gpt.log") failed" | tee -a "$table"
    test/test_loss_vector.sh >"$OUT/test_loss_vector.log" 2>&1
    grep -E "^(PASS|FAIL)" "$OUT/test_loss_vector.log" | tee -a "$table"
    ! grep -q ^FAIL "$OUT/test_loss_vector.log" || status=1
    ;;
resume)
    # run A: 20 steps straight; run B: the same, then its step-20 checkpoint is
    # removed and -y 1 continues from step 10: logs and final models must match
    tiny="-e gpt2:d2,C=128,NH=2 -b 4 -t 256 -d 2048 -x 20 -u 2 -n 10 -nk 0 -v 10 -m 2 -s 0 $data"
    rm -rf /tmp/resA /tmp/resB
    ./train_gpt $tiny -o /tmp/resA >"$OUT/resume_A.log" 2>&1 &&
    ./train_gpt $tiny -o /tmp/resB >"$OUT/resume_B.log" 2>&1 &&
    rm /tmp/resB/model_00000020.bin /tmp/resB/state_00000020_00000.bin &&
    ./train_gpt $tiny -o /tmp/resB -y 1 >"$OUT/resume_B2.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && cmp -s /tmp/resA/main.log /tmp/resB/main.log && cmp -s /tmp/resA/model_00000020.bin /tmp/resB/model_00000020.bin; then
        echo "PASS resume_bit_identical (main.log and step-20 model equal)" | tee -a "$table"
    else
        echo "FAIL resume_bit_identical: rc=$rc" | tee -a "$table"; status=1
        diff /tmp/resA/main.log /tmp/resB/main.log | head; for f in "$OUT"/resume_*.log; do tail -n 5 "$f"; done
    fi
    # a torn state file must be detected and skipped
    head -c 1000 /tmp/resA/state_00000020_00000.bin >/tmp/torn && mv /tmp/torn /tmp/resA/state_00000020_00000.bin
    ./train_gpt $tiny -o /tmp/resA -y 1 >"$OUT/resume_torn.log" 2>&1
    if grep -q "unusable" "$OUT/resume_torn.log" && grep -q "continuing from step 10" "$OUT/resume_torn.log"; then
        echo "PASS resume_skips_torn_state" | tee -a "$table"
    else
        echo "FAIL resume_skips_torn_state"; tail -5 "$OUT/resume_torn.log"; status=1
    fi
    ;;
failures)
    # out of memory: a message with the need and the largest batch that fits, no raw CUDA error
    ./train_gpt $data -e gpt2:d48 -b 256 -t 1024 -d 262144 -x 1 -v 0 -s 0 >"$OUT/oom.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "out of GPU memory.*needs" "$OUT/oom.log" && grep -q "largest micro-batch that fits is -b" "$OUT/oom.log"; then
        echo "PASS out_of_memory_message: $(grep -o 'largest micro-batch that fits is -b [0-9]*' "$OUT/oom.log")" | tee -a "$table"
    else
        echo "FAIL out_of_memory_message: rc=$rc" | tee -a "$table"; tail -n 5 "$OUT/oom.log"; status=1
    fi
    # a model file whose token embedding is all NaN: every step non-finite, skipped, then a clear abort
    ./train_gpt $data -e gpt2:d2,C=128,NH=2 -b 4 -t 256 -d 1024 -x 1 -u 0 -v 0 -s 0 -o /tmp/nanrun >/dev/null 2>&1
    python3 -c "
import sys; f = open(sys.argv[1], 'r+b'); f.seek(1024); f.write(b'\xff\xff' * (50304 * 128))" /tmp/nanrun/model_00000001.bin &&
    ./train_gpt $data -e /tmp/nanrun/model_00000001.bin -b 4 -t 256 -d 1024 -x 10 -u 1 -v 0 -s 0 --max-skips 3 >"$OUT/nan.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ "$(grep -c 'update skipped' "$OUT/nan.log")" -eq 3 ] && grep -q "3 steps in a row" "$OUT/nan.log"; then
        echo "PASS nonfinite_skip_then_abort" | tee -a "$table"
    else
        echo "FAIL nonfinite_skip_then_abort: rc=$rc" | tee -a "$table"; tail -n 5 "$OUT/nan.log"; status=1
    fi
    ;;
train)
    # the main job: what `make train` runs (./train_gpt, defaults), with a main.log
    ./train_gpt -o /tmp/train_default >"$OUT/train_default.log" 2>&1 || status=1
    cp /tmp/train_default/main.log "$OUT/train_default_main.log"
    grep -E "val loss|sample|done|error" "$OUT/train_default.log" | tail -14
    ;;
bench)
    bench_header
    # each workload on both attention paths (--attention: the Hopper kernels vs mma.sync), same run,
    # back to back twice (sm90, sm80, sm90, sm80): under the card's power cap the clocks move by up
    # to 30% within a minute, and that then falls on both paths
    bench_both_paths() { # NAME FLAGS...: rows NAME_sm90_1, NAME_sm80_1, NAME_sm90_2, NAME_sm80_2
        local round path
        for round in 1 2; do
            for path in sm90 sm80; do bench "$1_${path}_$round" "${@:2}" --attention $path; done
        done
    }
    bench_both_paths gpt2_124M_T1024_B32_docmask -e gpt2:d12 -b 32 -t 1024 -d 32768 -x 60
    bench_both_paths llama1B_T2048_B8_docmask -e llama:1B -b 8 -t 2048 -d 16384 -x 24
    bench_both_paths llama1B_NH16_NKV4_T8192_B2_docmask -e llama:1B,NH=16,NKV=4 -b 2 -t 8192 -d 16384 -x 24
    bench gpt2_124M_T1024_B32_causal -e gpt2:d12 -b 32 -t 1024 -d 32768 -x 60 --doc-mask 0
    bench gpt2_124M_T1024_B64_docmask -e gpt2:d12 -b 64 -t 1024 -d 65536 -x 36
    ;;
recompute)
    # -r 1 recomputes the GELU / SwiGLU input in the backward, -r 2 also the norms
    bench_header
    for r in 0 1 2; do bench "gpt2_124M_T1024_B32_docmask_r$r" -e gpt2:d12 -b 32 -t 1024 -d 32768 -x 60 -r $r; done
    for r in 0 2; do bench "llama1B_T2048_B8_docmask_r$r" -e llama:1B -b 8 -t 2048 -d 16384 -x 24 -r $r; done
    ;;
longctx)
    # T=8192 on one card: rows of one 8192-token sequence each (plain causal), head dim 64 and 128
    bench_header
    bench llama1B_T8192_B2_causal_r0 -e llama:1B -b 2 -t 8192 -d 16384 -x 18 --doc-mask 0
    bench llama1B_NH16_NKV4_T8192_B2_causal_r0 -e llama:1B,NH=16,NKV=4 -b 2 -t 8192 -d 16384 -x 18 --doc-mask 0
    bench llama1B_T8192_B2_causal_r2 -e llama:1B -b 2 -t 8192 -d 16384 -x 18 --doc-mask 0 -r 2
    ;;
profile)
    # GEMM TFLOP of one step = 6 x matmul parameters x tokens:
    #   gpt2:d12  12 x (768 x (2304 + 768 + 2 x 3072)) + 768 x 50304 = 123.6M params, x 32768 tokens -> 24.29
    #   llama:1B  16 x (2048 x (3072 + 2048 + 16384) + 8192 x 2048) + 2048 x 50304 = 1076.1M, x 16384 -> 105.79
    dev/profile_step.sh gpt2_d12_T1024_B32 24.29 "$OUT" $data -e gpt2:d12 -b 32 -t 1024 -d 32768 | tee -a "$table"
    dev/profile_step.sh llama1B_T2048_B8 105.79 "$OUT" $data -e llama:1B -b 8 -t 2048 -d 16384 | tee -a "$table"
    ;;
esac
done
echo "== summary"
cat "$table"
if [ -n "$device_out" ]; then dev/pack_logs.sh "$OUT"; fi
exit $status
