#!/usr/bin/env bash
# test_mc_eval.sh — multiple-choice evaluation end to end on the CPU:
# dev/data/hellaswag.py turns the hand-written test/data/mc_small.jsonl (6
# examples, four endings each: one natural English ending, three of
# gibberish) into llm.c's HellaSwag .bin; ./train_cpu --eval trains a tiny
# gpt2 for 25 steps on the embedded corpus and logs llm.c's `s:STEP eval:ACC`
# lines; build/tools/model_eval scores the saved model. Examples 0-3 label
# the natural ending (it must win: right), examples 4-5 label a gibberish one
# (the natural ending still wins: wrong), so the accuracy is exactly 4/6.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PY=$(python_with numpy)
if [ -z "$PY" ]; then
    echo "SKIP mc_eval: no python3 with numpy (apt-get install python3-numpy)"
    exit 0
fi
for bin in ./train_cpu build/tools/model_eval build/tools/tokenize; do
    [ -x $bin ] || { echo "FAIL mc_eval: $bin is not built"; exit 1; }
done

expect "mc_eval: hellaswag.py converts the hand-written jsonl" 0 "wrote .*: 6 examples" \
    "$PY" dev/data/hellaswag.py test/data/mc_small.jsonl "$TMP/mc.bin"
./train_cpu -x 25 -v 25 -j "" --eval "$TMP/mc.bin" -o "$TMP/run" >"$TMP/train.log" 2>&1
expect "mc_eval: train_cpu --eval logs llm.c's eval lines at steps 0 and 25" 0 '^2$' \
    grep -cE '^s:(0|25) eval:[0-9.]+$' "$TMP/run/main.log"
expect "mc_eval: accuracy 4/6 of the trained model in main.log" 0 '^s:25 eval:0\.6667$' cat "$TMP/run/main.log"
build/tools/model_eval "$TMP/run/model_00000025.bin" --eval "$TMP/mc.bin" >"$TMP/eval.log" 2>&1
for i in 0 1 2 3; do
    expect "mc_eval: example $i, the labelled natural ending wins" 0 "^example $i: .*\(right\)" cat "$TMP/eval.log"
done
for i in 4 5; do
    expect "mc_eval: example $i, a labelled gibberish ending loses" 0 "^example $i: .*\(wrong\)" cat "$TMP/eval.log"
done
expect "mc_eval: model_eval agrees with train_cpu (4 of 6)" 0 "4 of 6 examples correct" cat "$TMP/eval.log"
expect "mc_eval: an eval set longer than -t is refused before the first step" 1 \
    "example [0-9]+: context \\+ completion [0-9]+ = [0-9]+ tokens do not fit a row of T=4" \
    ./train_cpu -x 1 -t 4 --eval "$TMP/mc.bin"
printf 'not an eval file' >"$TMP/bad.bin"
expect "mc_eval: train_cpu --eval refuses a file that is not an eval file" 1 "bad.bin': shorter than the 256-int header" \
    ./train_cpu -x 1 --eval "$TMP/bad.bin"
