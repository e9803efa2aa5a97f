#!/usr/bin/env bash
# median_step.sh — the step line of median time in a train_gpt log, among the steps taken at the
# clock the card keeps under load: the first two steps (start-up) are skipped, then the steps that
# start within the next WARM_MS milliseconds of step time (default 2000). Under its 700 W cap an
# H200 runs at 1980 MHz for a moment after an idle spell, such as the model's setup, and at
# ~1500 MHz once loaded (dev/notes/attention.md, 2026-12-03). Of an even count, the faster middle
# step is printed, so that its ms, tokens/s and MFU belong to one step.
# Prints nothing and exits 1 when fewer than 5 steps are left after the warm-up.
#
# usage: dev/median_step.sh LOG [WARM_MS]
set -u
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: dev/median_step.sh LOG [WARM_MS]" >&2; exit 2; }
log=$1 warm_ms=${2:-2000}
[ -r "$log" ] || { echo "median_step: cannot read '$log'" >&2; exit 2; }
[[ "$warm_ms" =~ ^[0-9]+$ ]] || { echo "median_step: WARM_MS must be a whole number of ms, not '$warm_ms'" >&2; exit 2; }
# step lines: "step N/M | loss .. | lr .. | norm .. | MS ms | TOK tok/s | MFU ..%": field 5 is the ms
line=$(grep -E "^step +[0-9]+/" "$log" |
    awk -F'|' -v warm_ms="$warm_ms" 'NR > 2 {ms = $5 + 0; if (warmed >= warm_ms) print ms "\t" $0; warmed += ms}' |
    sort -g | awk '{line[NR] = $0} END {if (NR >= 5) print line[int((NR + 1) / 2)]}' | cut -f2-)
[ -n "$line" ] || exit 1
echo "$line"
