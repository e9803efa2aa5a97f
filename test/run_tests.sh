#!/usr/bin/env bash
# run_tests.sh — run test programs and scripts, add up their PASS/FAIL lines.
#
# usage: test/run_tests.sh PROGRAM_OR_SCRIPT...
# Each argument is an executable (a built test program or a test/*.sh script)
# that prints "PASS name" / "FAIL name: why" lines, or "SKIP name: why" when
# a tool it needs is not installed (clang for fuzzing, utf8proc). A program
# that exits non-zero without printing any FAIL line (a crash, a die())
# counts as one failure. With PACKLM_NO_SKIP=1 (set by .ci/run) a skip counts
# as a failure. Ends with "N passed, M failed[, K skipped]" and exits
# non-zero on any failure.
set -u
passed=0
failed=0
skipped=0
logdir=${TEST_LOG_DIR:-build/test-logs}
mkdir -p "$logdir"
for prog in "$@"; do
    name=$(basename "$prog")
    log="$logdir/$name.log"
    echo "== $name"
    "$prog" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    k=$(grep -c '^SKIP ' "$log")
    grep -E '^(FAIL|SKIP) ' "$log"
    if [ "$k" -gt 0 ] && [ "${PACKLM_NO_SKIP:-0}" = 1 ]; then
        echo "FAIL $name: $k skipped check(s), and PACKLM_NO_SKIP=1 requires every check to run"
        f=$((f + k))
        k=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc without reporting a failure; last lines of $log:"
        tail -n 15 "$log"
        f=1
    fi
    echo "   $p passed, $f failed$([ "$k" -gt 0 ] && echo ", $k skipped")"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
done
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
