#!/usr/bin/env bash
# test_loss_vector.sh — llm.c's CI habit: the first 10 training losses of a
# fixed tiny run are checked into test/loss_vector_tiny.log (main.log format,
# recorded on an H100 80GB HBM3 on 2026-11-25 with --record), and
# train_gpt must reproduce each within TOL (absolute). A change that moves the
# numbers (a kernel, the init, the data order, the optimizer) fails here;
# if the move is intended, re-record the file and say why in the commit.
#
# Without a GPU only the checker itself is tested (the vector is well formed,
# the checker accepts it and rejects a drifted copy and a NaN); with a GPU
# (nvidia-smi -L works) train_gpt is built and the tiny run is checked.
#
# The run: gpt2:d4 (C=256, 4 heads), bestfit rows of T=256 from the embedded
# fortunes corpus, B=4, 10 steps (see RUN below).
# `test/test_loss_vector.sh --record` (GPU machine) rewrites the vector.
set -u
cd "$(dirname "$0")/.."
VECTOR=test/loss_vector_tiny.log
TOL=2e-3
RUN=(-e gpt2:d4 -b 4 -t 256 -d 1024 -x 10 -u 2 -l 1e-3 -k cosine -v 0 -s 0 --seed 1337)

# check NAME EXPECTED ACTUAL: one PASS/FAIL line, compares s:STEP trl:LOSS lines step by step
check() {
    local why
    if [ ! -s "$3" ]; then echo "FAIL $1: $3 is missing or empty"; return; fi
    why=$(awk -v tol="$TOL" '
        function loss(line) { sub(/.*trl:/, "", line); sub(/ .*/, "", line); return line }
        FNR == NR { if ($1 ~ /^s:/ && $2 ~ /^trl:/) want[$1] = loss($0); next }
        $1 ~ /^s:/ && $2 ~ /^trl:/ { got[$1] = loss($0) }
        END {
            n = 0
            for (s in want) {
                n++
                if (!(s in got)) { print s " missing"; exit }
                d = got[s] - want[s]  # a non-number (nan, inf) fails the pattern: some awks call NaN <= x true
                if (got[s] !~ /^-?[0-9]+(\.[0-9]*)?$/ || d > tol || -d > tol) {
                    print s " loss " got[s] " vs " want[s] " (tolerance " tol ")"; exit
                }
            }
            if (n != 10) print "expected 10 losses, the vector has " n
        }' "$2" "$3")
    if [ -z "$why" ]; then echo "PASS $1"; else echo "FAIL $1: $why"; fi
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
run_train_gpt() { # the tiny run into $TMP/run; 0 on success
    make -s train_gpt >"$TMP/build.log" 2>&1 || { echo "FAIL loss_vector_build: $(tail -n 3 "$TMP/build.log")"; return 1; }
    ./train_gpt "${RUN[@]}" -o "$TMP/run" >"$TMP/run.log" 2>&1 && return 0
    echo "FAIL loss_vector_train_gpt: train_gpt failed: $(tail -n 3 "$TMP/run.log")"
    return 1
}
if [ "${1:-}" = "--record" ]; then
    run_train_gpt || exit 1
    grep ' trl:' "$TMP/run/main.log" >"$VECTOR"
    echo "recorded $VECTOR on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1):"
    cat "$VECTOR"
    exit 0
fi
[ -f "$VECTOR" ] || { echo "FAIL loss_vector_present: $VECTOR is missing"; exit 1; }
check loss_vector_self "$VECTOR" "$VECTOR"
awk -v tol="$TOL" '$1 == "s:5" { sub(/trl:[^ ]*/, "trl:" (substr($2, 5) + 2 * tol)) } { print }' "$VECTOR" >"$TMP/drift.log"
why=$(check drift "$VECTOR" "$TMP/drift.log")
case $why in FAIL*) echo "PASS loss_vector_rejects_drift" ;; *) echo "FAIL loss_vector_rejects_drift: $why" ;; esac
sed 's/^s:3 trl:[^ ]*/s:3 trl:nan/' "$VECTOR" >"$TMP/nan.log"
why=$(check nan "$VECTOR" "$TMP/nan.log")
case $why in FAIL*) echo "PASS loss_vector_rejects_nan" ;; *) echo "FAIL loss_vector_rejects_nan: $why" ;; esac
why=$(check missing "$VECTOR" "$TMP/no_such_main.log")
case $why in FAIL*) echo "PASS loss_vector_rejects_missing_log" ;; *) echo "FAIL loss_vector_rejects_missing_log: $why" ;; esac

if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU visible: the train_gpt run is left to the GPU machine (make test there)"
    exit 0
fi
run_train_gpt && check loss_vector_train_gpt "$VECTOR" "$TMP/run/main.log"
