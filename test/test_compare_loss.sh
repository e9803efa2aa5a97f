#!/usr/bin/env bash
# test_compare_loss.sh — scripts/compare_loss.py on made-up main.log files:
# close curves pass its --max-* checks, a shifted or diverging curve fails them
# (exit status 1 and a FAIL line), unreadable or empty logs give an error that
# names the file, and the PNG is written when matplotlib is installed.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
COMPARE=(python3 scripts/compare_loss.py)

# make_log FILE OFFSET GROWTH: a decaying curve, + OFFSET + GROWTH*step, a val line every 50 steps
make_log() {
    awk -v off="$2" -v grow="$3" 'BEGIN {
        for (s = 0; s < 200; s++) {
            l = 3 + 8 * exp(-s / 40) + 0.3 * sin(s * 1.7) + off + grow * s
            printf "s:%d trl:%f lr:0.000600 norm:1.000000\n", s, l
            if (s % 50 == 0) printf "s:%d tel:%f\n", s, l + 0.1
        }
    }' >"$1"
}
make_log "$TMP/a.log" 0 0
make_log "$TMP/close.log" 0.004 0
make_log "$TMP/shifted.log" 0.05 0
make_log "$TMP/diverging.log" 0 0.0002
CHECKS=(--max-mean-diff 0.01 --max-step0-rel 1e-3 --max-trend 0.01)

expect compare_close_passes 0 '^PASS close_mean_diff' "${COMPARE[@]}" "$TMP/a.log" "$TMP/close.log" \
    --labels a,close "${CHECKS[@]}"
expect compare_shift_fails 1 '^FAIL shifted_mean_diff' "${COMPARE[@]}" "$TMP/a.log" "$TMP/shifted.log" \
    --labels a,shifted "${CHECKS[@]}"
expect compare_divergence_fails 1 '^FAIL diverging_trend' "${COMPARE[@]}" "$TMP/a.log" "$TMP/diverging.log" \
    --labels a,diverging "${CHECKS[@]}"
expect compare_reports_val 0 'val diff \+0\.0040 at step 150' "${COMPARE[@]}" "$TMP/a.log" "$TMP/close.log"
expect compare_missing_file 1 "cannot read $TMP/nope.log" "${COMPARE[@]}" "$TMP/a.log" "$TMP/nope.log"
: >"$TMP/empty.log"
expect compare_empty_log 1 "$TMP/empty.log: no 's:STEP trl:LOSS' lines" "${COMPARE[@]}" "$TMP/a.log" "$TMP/empty.log"
if python3 -c 'import matplotlib' 2>/dev/null; then
    "${COMPARE[@]}" "$TMP/a.log" "$TMP/close.log" --png "$TMP/ab.png" >/dev/null 2>&1
    if [ -s "$TMP/ab.png" ]; then echo "PASS compare_writes_png"; else echo "FAIL compare_writes_png: no PNG"; fi
fi
