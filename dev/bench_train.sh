#!/usr/bin/env bash
# bench_train.sh — train_gpt next to the PyTorch peer (dev/reference/bench_peer.py:
# torch.compile, bf16 autocast, fused AdamW, FlexAttention document mask) on the
# same synthetic packed micro-batches, in one run on one GPU, and one table:
#
#   workload | ours tok/s | peer tok/s | ours/peer | ours peak MiB | peer peak MiB
#
# Workloads (document-masked, one micro-batch per step): GPT-2 124M T=1024 B=32
# and B=64; the Llama-3.2-1B shape on the GPT-2 vocabulary, T=2048 B=8.
# Synthetic data: dev/data/synth_shards.py (log-normal documents, median ~400,
# mean ~650 tokens). train_gpt packs them (--packing chunk) and dumps its
# micro-batches; the peer replays that dump, so both see the same batches.
# tok/s: the median step after a warm-up: the first steps (ours 2, dev/median_step.sh;
# the peer WARMUP, its compilation), then 2 s of steps (the peer: bench_peer.py
# --warm-seconds 2), so that both sides are timed at the clock the card keeps
# under load, not the top clock of its first moments. Peak memory:
# the largest nvidia-smi "memory.used" during the run minus the value before
# it, measured the same way for both.
#
# The table's header comes first and each row as soon as its workload is done
# (the per-run logs interleave: `grep -A9 ^card:` or `grep '|'` pick the table).
#
# The peer's line VARIANT (its old setting: mask built and batch copied inside
# the timed step) is kept in the peer's log.
#
# usage: dev/bench_train.sh [OUTDIR]   (GPU machine; env: STEPS, WARMUP, WORKLOADS, GPU_ARCH,
#        SYNTH: a directory of synth_train_*.bin shards to use instead of writing 20M tokens)
set -uo pipefail
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
OUT_DIR=${1:-build/bench}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-5}
WORKLOADS=${WORKLOADS:-"gpt2-b32 gpt2-b64 llama1b"}
mkdir -p "$OUT_DIR"
make -s train_gpt GPU_ARCH="${GPU_ARCH:-90a}" >"$OUT_DIR/build.log" 2>&1 || { cat "$OUT_DIR/build.log"; exit 1; }
SYNTH=${SYNTH:-$OUT_DIR/synth}
[ -e "$SYNTH/synth_train_000001.bin" ] ||
    python3 dev/data/synth_shards.py --out "$SYNTH" --tokens 20000000 --shard-tokens 10000000 || exit 1

# run CMD... with a memory sampler; prints the peak MiB above the idle level
with_peak_memory() {
    local idle samples=$OUT_DIR/mem.$$ pid
    idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$samples" &
    pid=$!
    "$@"
    local rc=$?
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    PEAK_MIB=$(awk -v idle="$idle" 'BEGIN {m = idle} $1 > m {m = $1} END {print m - idle}' "$samples")
    rm -f "$samples"
    return $rc
}

# the tokens/s of train_gpt's median step after its warm-up (dev/median_step.sh; "n/a": too few steps)
ours_tok_s() {
    local line
    line=$(dev/median_step.sh "$1") || { echo n/a; return; }
    echo "$line" | sed -E 's/.*\| ([0-9.]+) tok\/s.*/\1/'
}

row() { printf '%-10s | %12s | %12s | %9s | %13s | %13s\n' "$@"; }
echo "card: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
row workload "ours tok/s" "peer tok/s" ours/peer "ours peak MiB" "peer peak MiB"
declare -A MODEL=([gpt2-b32]=gpt2:d12 [gpt2-b64]=gpt2:d12 [llama1b]=llama:1B)
declare -A ROWS=([gpt2-b32]=32 [gpt2-b64]=64 [llama1b]=8)
declare -A SEQ=([gpt2-b32]=1024 [gpt2-b64]=1024 [llama1b]=2048)
for w in $WORKLOADS; do
    [ -n "${ROWS[$w]:-}" ] || { echo "bench_train: unknown workload '$w' (known: ${!ROWS[*]})"; exit 1; }
    B=${ROWS[$w]} T=${SEQ[$w]}
    echo "== $w: train_gpt -e ${MODEL[$w]} -b $B -t $T"
    with_peak_memory ./train_gpt -e "${MODEL[$w]}" -i "$SYNTH/synth_train_*.bin" -j "" -b "$B" -t "$T" \
        -d $((B * T)) -x "$((STEPS + WARMUP))" -v 0 -s 0 --packing chunk --dump-batches "$OUT_DIR/$w.batches" \
        >"$OUT_DIR/$w.ours.log" 2>&1
    rc=$?
    ours_mib=$PEAK_MIB
    ours=$([ $rc -eq 0 ] && ours_tok_s "$OUT_DIR/$w.ours.log" || echo failed)
    [ $rc -eq 0 ] || tail -n 5 "$OUT_DIR/$w.ours.log"
    echo "== $w: bench_peer.py"
    with_peak_memory python3 dev/reference/bench_peer.py --workload "$w" --batches "$OUT_DIR/$w.batches" \
        --steps "$STEPS" --warmup "$WARMUP" --warm-seconds 2 >"$OUT_DIR/$w.peer.log" 2>&1
    rc=$?
    peer_mib=$PEAK_MIB
    peer=$(awk '$1 == "RESULT" {print $4}' "$OUT_DIR/$w.peer.log")
    [ $rc -eq 0 ] && [ -n "$peer" ] || { peer=failed; tail -n 5 "$OUT_DIR/$w.peer.log"; }
    rm -f "$OUT_DIR/$w.batches"
    ratio=$(awk -v a="$ours" -v b="$peer" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a"}')
    row "$w" "$ours" "$peer" "$ratio" "$ours_mib" "$peer_mib"
done
