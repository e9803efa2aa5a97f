#!/usr/bin/env bash
# test_dev_scripts.sh — the shell scripts that run on the GPU machine (parity,
# curves, benchmarks, launchers) can't run here, so check what can be checked
# without a GPU:
#   - every tracked *.sh / *.bash / *.sbatch parses (bash -n),
#   - the scripts that take -h / --help print their usage block and exit 0,
#   - attention_schedule_model.py: the benchmark's packed lengths, one block at the even split,
#     the claim policies' recorded finish, bad arguments refused,
#   - bench_attention_peer.py: a report without our SM clock, and a missing report, refused,
#   - median_step.sh: the median step after the warm-up, without it, too short a run, bad input,
#   - parity.sh and run_curves.sh refuse an unknown MODELS / RUNS name,
#     run_trainer_checks.sh an unknown part, and
#     parity.sh an odd ROWS, with an error naming it, before building or
#     reading anything;
#   - parity.sh --gate on the committed parity logs (dev/curves/parity_*.log):
#     both families and both seeds pass with their ratio printed; a run
#     drifting further than PyTorch bf16, a NaN loss or a short log fail; the
#     8K-tokens-per-step rerun (dev/curves/parity8k_*.log) gives its recorded
#     verdicts (llama passes, gpt2:d12 fails), and so does the 32K rerun of
#     gpt2:d12 (dev/curves/parity32k_*.log: seed 1337 fails, seed 2 passes,
#     the -b 4 control of seed 1337 passes at 0.949), and so do gpt2:d12's
#     8K runs with seeds 3 and 4 (both pass);
#   - pack_logs.sh: a folder of 11 files (one in a subfolder) becomes one
#     logs.tgz holding all 11 with their contents; 3 files are left alone; a
#     missing folder or a bad limit is refused.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for f in $(git ls-files '*.sh' '*.bash' '*.sbatch' 2>/dev/null); do
    if out=$(bash -n "$f" 2>&1); then echo "PASS parses_${f//\//_}"; else echo "FAIL parses_${f//\//_}: $out"; fi
done

for f in dev/reference/parity.sh dev/reference/run_device.sh dev/curves/run_curves.sh dev/bench_train.sh \
    dev/data/build_linux_docs_corpus.sh dev/profile_step.sh dev/pack_logs.sh dev/cuda/run_attention.sh \
    dev/run_trainer_checks.sh dev/cuda/attention_schedule_model.py dev/cuda/bench_attention_peer.py \
    dev/median_step.sh; do
    expect "help_${f//\//_}" 0 'usage:' "$f" --help
done

# the schedule model of the sm90 forward's claims (what attention_sm90.cuh's comment on the claim quotes):
# its packed lengths are the benchmark's (the first 12 of T=8192 as attn_benchmark_lengths in
# dev/cuda/attention_check.h gives them for length seed 20261125 + 2), one block finishes exactly at the
# even split, and on 132 blocks claiming the item after next ends 6.1% after it, claiming the next 3.0%
# (head-major to the end, --tail 1); the last 4 heads merged (the kernel's order), the next 0.1%
m=dev/cuda/attention_schedule_model.py
expect schedule_model_lengths 0 '^156 197 281 158 225 364 202 301 871 891 462 275$' $m --lengths 8192
expect schedule_model_one_block 0 'T=8192 NH=32: 8992 items; after-next 1.000 \(1.000\); next 1.000 \(1.000\); at-end 1.000' \
    $m --blocks 1
expect schedule_model_claims 0 'T=8192 NH=32: 8992 items; after-next 1.061 \(0.942\); next 1.030 \(0.971\)' $m --tail 1
expect schedule_model_tail 0 'T=8192 NH=32: 8992 items; after-next 1.013 \(0.987\); next 1.001 \(0.999\)' $m
expect schedule_model_bad_tail 1 'error: --tail takes a positive count' $m --tail 0
# the forward's items that one consumer warpgroup computes alone (a document's last tile of 1-64 rows)
expect schedule_model_lone 0 'one warpgroup alone: 8.5% of the items, 3.5% of the warpgroup kv steps idle' $m
# the backward's grid: kv rows first finishes before dq rows first (the orders measured on 2026-12-02, ninth session)
expect schedule_model_backward 0 'T=8192 NH=32 G=4: 21520 blocks on 264 slots; kv-first 1.012; interleaved 1.021; dq-first 1.062' \
    $m --backward
expect schedule_model_bad_blocks 1 'error: --blocks takes a positive count' $m --blocks 0
expect schedule_model_bad_shape 1 'error: --lengths takes one of' $m --lengths 4096

# median_step.sh (run_trainer_checks.sh's rows): two start-up steps of 1.5 s and 0.9 s, 50 steps of
# 40 ms (the 2 s warm-up), then 9 of 60 ms: the median after the warm-up is a 60 ms step; with no
# warm-up a 40 ms one; with a warm-up longer than the run, nothing (exit 1); a missing log or a bad
# WARM_MS refused
{
    echo "model gpt2:d12"
    i=0
    for ms in 1500 900 $(printf '40 %.0s' $(seq 50)) $(printf '60 %.0s' $(seq 9)); do
        i=$((i + 1))
        echo "step $i/61 | loss 5.0 | lr 3e-04 | norm 0.5 | $ms.0 ms | $((32768000 / ms)) tok/s | MFU 40.0% | ETA 0m01s"
    done
} >"$TMP/train.log"
expect median_step_after_warmup 0 '^step (5[3-9]|6[01])/61 .*\| 60\.0 ms \| 546133 tok/s' dev/median_step.sh "$TMP/train.log"
expect median_step_no_warmup 0 '^step ([3-9]|[1-4][0-9]|5[0-2])/61 .*\| 40\.0 ms' dev/median_step.sh "$TMP/train.log" 0
expect median_step_too_few 1 '^$' dev/median_step.sh "$TMP/train.log" 100000
expect median_step_missing 2 "median_step: cannot read '$TMP/none.log'" dev/median_step.sh "$TMP/none.log"
expect median_step_bad_warm 2 'WARM_MS must be a whole number' dev/median_step.sh "$TMP/train.log" 2s

# the peer benchmark's report reader (bench_attention_peer.py; torch is imported only after it):
# reports of the formats before (no SM clock on the 'ours' line) and after the twelfth session of
# 2026-12-03 (the clock, no power) and a missing file are refused with the file (and line) named
b=dev/cuda/bench_attention_peer.py
printf 'shape 1024 12 64 3 2\nlengths 1 2\nours sm90 0.1 0.2 0.3\n' >"$TMP/old_report.txt"
expect peer_report_no_clock 1 "error: $TMP/old_report.txt:3: 'ours' needs a path, 3 timings, the SM clock and the power" \
    python3 $b "$TMP/old_report.txt"
printf 'shape 1024 12 64 3 2\nlengths 1 2\nours sm90 0.1 0.2 0.3 1500\n' >"$TMP/clock_report.txt"
expect peer_report_no_power 1 "error: $TMP/clock_report.txt:3: 'ours' needs a path, 3 timings, the SM clock and the power" \
    python3 $b "$TMP/clock_report.txt"
printf 'shape 1024 12 64 3 2\nlengths 1 1\nours sm90 0.1 0.2 0.3 1500 690\n' >"$TMP/short_report.txt"
expect peer_report_bad_lengths 1 "error: $TMP/short_report.txt: shape T=1024 is incomplete or its lengths do not sum to N" \
    python3 $b "$TMP/short_report.txt"
expect peer_report_missing 1 "error: cannot read report '$TMP/none.txt'" python3 $b "$TMP/none.txt"

expect parity_unknown_model 1 "unknown model 'gpt5'" env MODELS="gpt2 gpt5" dev/reference/parity.sh "$TMP/parity"
expect parity_odd_rows 1 "ROWS must be even" env ROWS=3 MODELS=gpt2 dev/reference/parity.sh "$TMP/parity"
expect trainer_checks_unknown_part 2 "unknown part 'becnh'" env OUT="$TMP/trainer" dev/run_trainer_checks.sh tests becnh
expect curves_unknown_run 1 "unknown run 'nope'" env RUNS="bestfit_mask nope" dev/curves/run_curves.sh "$TMP/curves"

for run in gpt2:0.184 gpt2_seed2:0.540 llama:0.320 llama_seed2:0.259; do
    m=${run%%:*}
    expect "parity_gate_$m" 0 "PASS ${m}_parity_ratio \\(${run#*:} <= 1\\)" dev/reference/parity.sh --gate "$m" \
        "dev/curves/parity_${m}_pytorch.log" "dev/curves/parity_${m}_train_gpt.log" "dev/curves/parity_${m}_pytorch_bf16.log"
done
# the 2026-12-02 reruns: at 8K tokens per step (parity8k_, MICRO_STEPS=1) llama passes and gpt2:d12
# does not; at 32K (parity32k_, the default setting) gpt2:d12 fails for seed 1337 and passes for seed 2;
# the 2026-12-03 runs of gpt2:d12 at 8K with seeds 3 and 4 pass
for run in 8k_llama_s1337:PASS:0.216 8k_llama_s2:PASS:0.162 8k_gpt2_s1337:FAIL:1.192 8k_gpt2_s2:FAIL:1.661 \
    32k_gpt2_s1337:FAIL:1.096 32k_gpt2_s2:PASS:0.441 8k_gpt2_s3:PASS:0.378 8k_gpt2_s4:PASS:0.434; do
    IFS=: read -r m verdict ratio <<<"$run"
    c=dev/curves/parity$m
    if [ "$verdict" = PASS ]; then want=0 line="PASS ${m}_parity_ratio \\($ratio <= 1\\)"; else want=1 line="FAIL ${m}_parity_ratio: $ratio > 1"; fi
    expect "parity${m}_gate" "$want" "$line" dev/reference/parity.sh --gate "$m" \
        "${c}_pytorch.log" "${c}_train_gpt.log" "${c}_pytorch_bf16.log"
done
# the control of that 32K run: train_gpt against itself with half-size micro-batches (-b 4, only the
# summation order differs) lands at 0.949 for seed 1337, next to the 1.096 that fails
c=dev/curves/parity32k_gpt2_s1337
expect parity32k_b4_control_gate 0 "PASS b4_s1337_parity_ratio \\(0.949 <= 1\\)" dev/reference/parity.sh --gate b4_s1337 \
    "${c}_pytorch.log" "${c}_train_gpt_b4.log" "${c}_pytorch_bf16.log"
fp32=dev/curves/parity_gpt2_pytorch.log bf16=dev/curves/parity_gpt2_pytorch_bf16.log
awk '{ sub(/trl:[^ ]*/, "trl:" substr($2, 5) + 0.06) } 1' "$fp32" >"$TMP/drifting.log"  # 0.06 > bf16's 0.055
expect parity_gate_fails_drift 1 'FAIL drift_parity_ratio: 1\.0[0-9]* > 1' dev/reference/parity.sh --gate drift "$fp32" "$TMP/drifting.log" "$bf16"
sed '5s/trl:[^ ]*/trl:nan/' "$fp32" >"$TMP/nan.log"
expect parity_gate_fails_nan 1 'FAIL nan_parity_ratio: not a number' dev/reference/parity.sh --gate nan "$fp32" "$TMP/nan.log" "$bf16"
head -n 100 "$fp32" >"$TMP/short.log"
expect parity_gate_fails_short_log 1 'FAIL short_parity_ratio: step [0-9]+ missing' dev/reference/parity.sh --gate short "$fp32" "$TMP/short.log" "$bf16"

# pack_logs.sh (the device tool brings back 8 files at most)
mkdir -p "$TMP/many/sub" "$TMP/few" "$TMP/unpacked"
for i in $(seq 1 10); do echo "log $i" >"$TMP/many/f$i.log"; done
echo "nested" >"$TMP/many/sub/g.log"
for i in 1 2 3; do echo "log $i" >"$TMP/few/f$i.log"; done
expect pack_logs_packs 0 "11 files of .* packed into .*logs.tgz" dev/pack_logs.sh "$TMP/many"
if [ "$(ls -A "$TMP/many")" = "logs.tgz" ] && tar xzf "$TMP/many/logs.tgz" -C "$TMP/unpacked" &&
    [ "$(find "$TMP/unpacked" -type f | wc -l)" -eq 11 ] && [ "$(cat "$TMP/unpacked/sub/g.log")" = nested ] &&
    [ "$(cat "$TMP/unpacked/f7.log")" = "log 7" ]; then
    echo "PASS pack_logs_keeps_every_file"
else
    echo "FAIL pack_logs_keeps_every_file: $(ls -A "$TMP/many") / $(find "$TMP/unpacked" -type f | wc -l) unpacked"
fi
expect pack_logs_within_limit 0 "3 files in .* left as they are" dev/pack_logs.sh "$TMP/few"
if [ "$(ls "$TMP/few" | wc -l)" -eq 3 ]; then echo "PASS pack_logs_leaves_few"; else echo "FAIL pack_logs_leaves_few"; fi
expect pack_logs_missing_dir 1 "'$TMP/none' is not a directory" dev/pack_logs.sh "$TMP/none"
expect pack_logs_bad_limit 1 "LIMIT must be a whole number, not 'eight'" dev/pack_logs.sh "$TMP/few" eight
