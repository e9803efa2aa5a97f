#!/usr/bin/env bash
# run_dist_checks.sh — the one-GPU checks of the multi-GPU path (issue 6), in
# one call on a machine with one NVIDIA GPU, NCCL and OpenMPI:
#   1. test_dist: the srun-style file rendezvous (missing peers named, bounded
#      waits) and one-rank NCCL collectives;
#   2. a tiny model trained 10 steps (2 micro-steps each) without NCCL, twice
#      (the baseline must itself be bit-reproducible), then with NCCL and one
#      rank under `mpirun -np 1` and under the Slurm-style path (SLURM_*
#      variables set by hand, rendezvous file in /tmp) for -z 0, 1 and 2: the
#      main.log loss lines and the final model file must equal the baseline's
#      bit for bit;
#   3. checkpoint after step 5 under mpirun with -z 1, resume to step 10: the
#      last 5 loss lines and the final model file equal the uninterrupted run's.
# Prints PASS/FAIL lines and a closing table; every log goes into
# $OUT/dist_logs.tar.gz ($OUT defaults to /tmp/dist_checks). Runs as root on
# the device machine, hence --allow-run-as-root. Usage: dev/run_dist_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/dist_checks}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/dist_work_XXXXXX)
LOGS=$WORK/logs
RDZV=$(mktemp -d /tmp/packlm_rdzv_XXXXXX)
mkdir -p "$OUT" "$LOGS"
export NCCL_NVLS_ENABLE=0 NCCL_DEBUG=${NCCL_DEBUG:-WARN}
failures=0
table=()
pass() { echo "PASS $1"; table+=("$(printf '%-34s PASS' "$1")"); }
fail() { echo "FAIL $1: $2"; table+=("$(printf '%-34s FAIL  %s' "$1" "$2")"); failures=$((failures + 1)); }

nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | sed 's/^/card: /'
if ! make -B -j8 train_gpt build/test/test_dist GPU_ARCH=${GPU_ARCH:-90a} >"$LOGS/build.log" 2>&1; then
    tail -n 30 "$LOGS/build.log"
    echo "FAIL build"
    exit 1
fi

# 1. dist.cuh on its own
if build/test/test_dist >"$LOGS/test_dist.log" 2>&1; then pass test_dist; else fail test_dist "$(grep -m1 '^FAIL' "$LOGS/test_dist.log")"; fi
grep -E '^(PASS|FAIL)' "$LOGS/test_dist.log" | sed 's/^/  test_dist: /'

# 2. the same 10 steps through every launch path
DATA=()
if ! ls data/fortunes_train_*.bin >/dev/null 2>&1; then
    python3 dev/data/synth_shards.py --help >/dev/null 2>&1 &&
        python3 dev/data/synth_shards.py --out "$WORK/data" --tokens 2000000 >"$LOGS/synth.log" 2>&1
    DATA=(-i "$WORK/data/synth_train_*.bin" -j "")
fi
ARGS=(-e "gpt2:d12,L=2,C=128,NH=2" -b 4 -t 128 -d 1024 -x 10 -u 2 -l 1e-3 -v 0 -s 0 -n 5 --seed 7 "${DATA[@]}")
MPIRUN=(mpirun --allow-run-as-root -np 1 -x NCCL_NVLS_ENABLE -x NCCL_DEBUG)
train() { # name, launcher... : 10 steps into $WORK/name
    local name=$1
    shift
    rm -rf "${WORK:?}/$name"
    "$@" "${ARGS[@]}" -o "$WORK/$name" >"$LOGS/$name.log" 2>&1
}
slurm_env() { # z: the Slurm-style environment of a one-task job step
    echo SLURM_NTASKS=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_TASKS_PER_NODE=1 SLURM_JOB_ID=check$$ SLURM_STEP_ID=$1
}
losses() { grep -E '^s:[0-9]+ trl:' "$1/main.log" 2>/dev/null; }
same_as() { # run, reference run, label: identical loss lines and final model
    local why=""
    [ "$(losses "$WORK/$1" | wc -l)" -eq 10 ] || why="$(losses "$WORK/$1" | wc -l) loss lines, want 10 (see $1.log)"
    [ -z "$why" ] && [ "$(losses "$WORK/$1")" != "$(losses "$WORK/$2")" ] && why="loss lines differ from $2"
    [ -z "$why" ] && ! cmp -s "$WORK/$1/model_00000010.bin" "$WORK/$2/model_00000010.bin" && why="final model differs from $2"
    if [ -z "$why" ]; then pass "$3"; else fail "$3" "$why" && tail -n 8 "$LOGS/$1.log" | sed 's/^/    /'; fi
    return 0
}

train base ./train_gpt
if [ "$(losses "$WORK/base" | wc -l)" -ne 10 ]; then
    echo "FAIL baseline: the run without NCCL did not log 10 steps; its log ends:"
    tail -n 25 "$LOGS/base.log"
    exit 1
fi
train base_again ./train_gpt
same_as base_again base "baseline_reproducible"
for z in 0 1 2; do
    train "mpirun_z$z" "${MPIRUN[@]}" ./train_gpt -z $z
    same_as "mpirun_z$z" base "mpirun_np1_z${z}_equals_baseline"
    train "slurm_z$z" env $(slurm_env $z) ./train_gpt --rendezvous "$RDZV" -z $z
    same_as "slurm_z$z" base "slurm_style_z${z}_equals_baseline"
done
grep -h '^dist:' "$LOGS/mpirun_z1.log" | sed 's/^/  mpirun -z 1: /'

# 3. checkpoint at step 5, resume to 10, ZeRO-1 under mpirun
mkdir -p "$WORK/resumed"
cp "$WORK/mpirun_z1/model_00000005.bin" "$WORK/mpirun_z1/state_00000005_00000.bin" "$WORK/resumed/" 2>/dev/null
"${MPIRUN[@]}" ./train_gpt "${ARGS[@]}" -z 1 -y 1 -o "$WORK/resumed" >"$LOGS/resumed.log" 2>&1
if [ "$(losses "$WORK/resumed" | wc -l)" -ne 5 ]; then
    fail resume_z1_bit_exact "$(losses "$WORK/resumed" | wc -l) loss lines after the resume, want 5 (see resumed.log)"
elif [ "$(losses "$WORK/resumed")" != "$(losses "$WORK/mpirun_z1" | tail -n 5)" ]; then
    fail resume_z1_bit_exact "losses of steps 6..10 differ from the uninterrupted run"
elif ! cmp -s "$WORK/resumed/model_00000010.bin" "$WORK/mpirun_z1/model_00000010.bin"; then
    fail resume_z1_bit_exact "final model differs from the uninterrupted run"
else
    pass resume_z1_bit_exact
fi

cp "$WORK/base/main.log" "$LOGS/base_main.log" 2>/dev/null
rm -rf "$WORK" "$RDZV"
echo
echo "check                              result"
printf '%s\n' "${table[@]}"
echo "$((${#table[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
