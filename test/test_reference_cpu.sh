#!/usr/bin/env bash
# test_reference_cpu.sh — the PyTorch reference (dev/reference/model.py +
# train_ref.py) against the C fp32 CPU reference (llmc/model_cpu.h through
# ./train_cpu), no GPU needed: train_cpu trains a tiny model for 10 steps and
# writes its packed batches (--dump-batches); train_ref replays them from the
# same seeded fp32 init (--init fp32) with the same AdamW, schedule and
# clipping. Both are fp32 throughout, so every step's loss must agree to
# LOSS_TOL (1e-5) relative and its gradient norm to NORM_TOL (2e-4, the norm is
# printed with 4 decimals) absolute: this ties the reference used for the
# GPU parity runs to the C model on every CI run. Models: tiny gpt2 (tied
# head), tiny llama (GQA, untied head). Then checks that a changed setting is
# caught (the comparison can fail) and that a truncated batch dump is refused
# with an error naming the file.
# Needs PyTorch (Debian: python3-torch); without it the check is skipped.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
LOSS_TOL=1e-5
NORM_TOL=2e-4
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

PY=
for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c 'import torch, numpy' >/dev/null 2>&1; then PY=$candidate; break; fi
done
if [ -z "$PY" ]; then
    echo "SKIP reference_cpu: no python3 with torch and numpy (apt-get install python3-torch)"
    exit 0
fi
[ -x ./train_cpu ] || { echo "FAIL reference_cpu: ./train_cpu is not built (make train_cpu)"; exit 1; }

GPT2=gpt2:d2,C=64,NH=4,V=512,T=64
LLAMA=llama:1B,L=2,C=64,NH=4,NKV=2,F=128,V=512,T=64,tied=0
COMMON=(-b 4 -t 64 -x 10 -l 3e-3 -u 2 -k cosine -q 0.1 -c 0.1 --grad-clip 1.0)

# steps FILE: "loss norm" per step line of train_cpu / train_ref output
steps() { grep -E '^step ' "$1" | sed -E 's/.*\| loss ([^ ]+) \|.*\| norm ([^ ]+) \|.*/\1 \2/'; }

# agree NAME A B: every step's loss and norm within LOSS_TOL / NORM_TOL; prints PASS/FAIL, returns 0 if they agree
agree() {
    local out
    out=$(paste -d' ' <(steps "$2") <(steps "$3") | awk -v loss_tol="$LOSS_TOL" -v norm_tol="$NORM_TOL" '
        function abs(x) { return x < 0 ? -x : x }
        NF != 4 { bad = "step " NR ": a log is missing steps"; exit }
        { rl = abs($1 - $3) / abs($3); dn = abs($2 - $4)
          if (rl > worst_loss) worst_loss = rl
          if (dn > worst_norm) worst_norm = dn
          if ((rl > loss_tol || dn > norm_tol) && bad == "")
              bad = sprintf("step %d: loss %s vs %s, norm %s vs %s", NR, $1, $3, $2, $4) }
        END { if (NR < 10 && bad == "") bad = "only " NR " steps"
              if (bad != "") print "FAIL " bad
              else printf "OK %d steps, worst loss difference %.1e relative, norm %.1e\n", NR, worst_loss, worst_norm }')
    case $out in
    OK*) echo "PASS $1: ${out#OK }"; return 0 ;;
    *) echo "FAIL $1: ${out#FAIL }"; return 1 ;;
    esac
}

for model in "gpt2 $GPT2" "llama $LLAMA"; do
    set -- $model
    name=$1 descriptor=$2
    if ! ./train_cpu -e "$descriptor" -i synthetic "${COMMON[@]}" --seed 1337 --dump-batches "$TMP/$name.bin" \
        >"$TMP/$name.cpu.txt" 2>&1; then
        echo "FAIL ${name}_train_cpu: $(tail -n 2 "$TMP/$name.cpu.txt")"
        continue
    fi
    if ! "$PY" dev/reference/train_ref.py -e "$descriptor" --batches "$TMP/$name.bin" -d 256 "${COMMON[@]:4}" \
        --seed 1337 --init fp32 --attention dense >"$TMP/$name.ref.txt" 2>&1; then
        echo "FAIL ${name}_train_ref: $(tail -n 2 "$TMP/$name.ref.txt")"
        continue
    fi
    agree "${name}_pytorch_equals_c_reference" "$TMP/$name.cpu.txt" "$TMP/$name.ref.txt"
done

# the comparison can fail: the reference with another peak lr must not agree
"$PY" dev/reference/train_ref.py -e "$GPT2" --batches "$TMP/gpt2.bin" -d 256 \
    "${COMMON[@]:4}" -l 3.3e-3 --seed 1337 --init fp32 --attention dense >"$TMP/other_lr.txt" 2>&1
if agree other_lr "$TMP/gpt2.cpu.txt" "$TMP/other_lr.txt" >/dev/null; then
    echo "FAIL reference_cpu_detects_other_lr: a run with -l 3.3e-3 agreed with -l 3e-3"
else
    echo "PASS reference_cpu_detects_other_lr"
fi

# a truncated dump is refused, naming the file
head -c 1000 "$TMP/gpt2.bin" >"$TMP/cut.bin"
expect reference_cpu_truncated_dump 1 "$TMP/cut.bin" "$PY" dev/reference/train_ref.py \
    -e "$GPT2" --batches "$TMP/cut.bin" -d 256 "${COMMON[@]:4}" --init fp32 --attention dense
