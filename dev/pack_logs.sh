#!/usr/bin/env bash
# pack_logs.sh — the device tool brings back at most 8 files from $OUT, and a
# call that wrote more loses the rest. When DIR holds more than LIMIT (8)
# files, pack them all into DIR/logs.tgz (paths relative to DIR, read with
# `tar xzf logs.tgz`) and remove the packed files; a DIR within the limit is
# left as it is. The GPU scripts (run_all_checks.sh, run_trainer_checks.sh,
# cuda/run_attention.sh) call it last when $OUT is set.
#
# usage: dev/pack_logs.sh DIR [LIMIT]
set -u
case ${1:-} in -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: dev/pack_logs.sh DIR [LIMIT]" >&2; exit 1; }
dir=$1 limit=${2:-8}
[ -d "$dir" ] || { echo "pack_logs: '$dir' is not a directory" >&2; exit 1; }
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "pack_logs: LIMIT must be a whole number, not '$limit'" >&2; exit 1; }
count=$(find "$dir" -type f | wc -l)
if [ "$count" -le "$limit" ]; then
    echo "pack_logs: $count files in $dir, within $limit: left as they are"
    exit 0
fi
tmp=$(mktemp "${TMPDIR:-/tmp}/pack_logs.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(cd "$dir" && find . -type f -print0 | tar czf "$tmp" --null -T -) ||
    { echo "pack_logs: could not pack $dir; its files are left as they are" >&2; exit 1; }
find "$dir" -mindepth 1 -delete && mv "$tmp" "$dir/logs.tgz" ||
    { echo "pack_logs: could not replace the files of $dir by logs.tgz" >&2; exit 1; }
echo "pack_logs: $count files of $dir packed into $dir/logs.tgz"
