#!/usr/bin/env bash
# test_dev_scripts.sh — the shell scripts that run on the GPU machine (parity,
# curves, benchmarks, launchers) can't run here, so check what can be checked
# without a GPU:
#   - every tracked *.sh / *.bash / *.sbatch parses (bash -n),
#   - the scripts that take -h / --help print their usage block and exit 0,
#   - parity.sh and run_curves.sh refuse an unknown MODELS / RUNS name, and
#     parity.sh an odd ROWS, with an error naming it, before building or
#     reading anything.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for f in $(git ls-files '*.sh' '*.bash' '*.sbatch' 2>/dev/null); do
    if out=$(bash -n "$f" 2>&1); then echo "PASS parses_${f//\//_}"; else echo "FAIL parses_${f//\//_}: $out"; fi
done

for f in dev/reference/parity.sh dev/reference/run_device.sh dev/curves/run_curves.sh dev/bench_train.sh \
    dev/data/build_linux_docs_corpus.sh; do
    expect "help_${f//\//_}" 0 'usage:' "$f" --help
done

expect parity_unknown_model 1 "unknown model 'gpt5'" env MODELS="gpt2 gpt5" dev/reference/parity.sh "$TMP/parity"
expect parity_odd_rows 1 "ROWS must be even" env ROWS=3 MODELS=gpt2 dev/reference/parity.sh "$TMP/parity"
expect curves_unknown_run 1 "unknown run 'nope'" env RUNS="bestfit_mask nope" dev/curves/run_curves.sh "$TMP/curves"
