#!/usr/bin/env bash
# fuzz.sh — a short, bounded libFuzzer run of every target in build/fuzz/.
# One PASS/FAIL line per target; a crash leaves its input under build/fuzz-crashes/.
set -u
seconds=${FUZZ_SECONDS:-15}
cd "$(dirname "$0")/.."
shopt -s nullglob
targets=(build/fuzz/*)
if [ ${#targets[@]} -eq 0 ]; then
    if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
        echo "SKIP fuzz: ${FUZZ_CC:-clang} (libFuzzer) is not installed, so no fuzz target was built"
        exit 0
    fi
    echo "FAIL fuzz: no fuzz targets were built (expected build/fuzz/fuzz_*)"
    exit 1
fi
mkdir -p build/fuzz-crashes
for bin in "${targets[@]}"; do
    name=$(basename "$bin")
    corpus=build/fuzz-corpus/$name
    mkdir -p "$corpus"
    seeds=test/fuzz/corpus/${name#fuzz_}
    [ -d "$seeds" ] || seeds=
    if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -artifact_prefix=build/fuzz-crashes/"$name"- \
        "$corpus" $seeds >build/fuzz-crashes/"$name".log 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' build/fuzz-crashes/"$name".log | tail -n 1)
        echo "PASS $name ($runs in ${seconds}s)"
    else
        echo "FAIL $name: crash found, see build/fuzz-crashes/$name.log"
        tail -n 30 build/fuzz-crashes/"$name".log
    fi
done
