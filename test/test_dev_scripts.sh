#!/usr/bin/env bash
# test_dev_scripts.sh — the shell scripts that run on the GPU machine (parity,
# curves, benchmarks, launchers) can't run here, so check what can be checked
# without a GPU:
#   - every tracked *.sh / *.sbatch parses (bash -n),
#   - the scripts that take -h / --help print their usage block and exit 0,
#   - parity.sh and run_curves.sh refuse an unknown MODELS / RUNS name with an
#     error naming it, before building or reading anything.
set -u
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for f in $(git ls-files '*.sh' '*.sbatch' 2>/dev/null); do
    if out=$(bash -n "$f" 2>&1); then echo "PASS parses_${f//\//_}"; else echo "FAIL parses_${f//\//_}: $out"; fi
done

for f in dev/reference/parity.sh dev/reference/run_device.sh dev/curves/run_curves.sh dev/bench_train.sh \
    dev/data/build_linux_docs_corpus.sh; do
    out=$("$f" --help 2>&1)
    status=$?
    if [ "$status" -eq 0 ] && grep -q 'usage:' <<<"$out"; then
        echo "PASS help_${f//\//_}"
    else
        echo "FAIL help_${f//\//_}: exit status $status, output: $(head -n 2 <<<"$out")"
    fi
done

# unknown_name NAME VAR VALUE SCRIPT PATTERN: SCRIPT exits 1 and says PATTERN
unknown_name() {
    local out status
    out=$(env "$2=$3" "$4" "$TMP/$1" 2>&1)
    status=$?
    if [ "$status" -eq 1 ] && grep -q "$5" <<<"$out"; then
        echo "PASS $1"
    else
        echo "FAIL $1: exit status $status, output: $(head -n 2 <<<"$out")"
    fi
}
unknown_name parity_unknown_model MODELS "gpt2 gpt5" dev/reference/parity.sh "unknown model 'gpt5'"
unknown_name curves_unknown_run RUNS "bestfit_mask nope" dev/curves/run_curves.sh "unknown run 'nope'"
