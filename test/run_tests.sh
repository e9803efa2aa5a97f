#!/usr/bin/env bash
# run_tests.sh — run test programs and scripts, add up their PASS/FAIL lines.
#
# usage: test/run_tests.sh PROGRAM_OR_SCRIPT...
# Each argument is an executable (a built test program or a test/*.sh script)
# that prints "PASS name" / "FAIL name: why" lines. A program that exits
# non-zero without printing any FAIL line (a crash, a die()) counts as one
# failure. Ends with "N passed, M failed" and exits non-zero on any failure.
set -u
passed=0
failed=0
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
    grep '^FAIL ' "$log"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc without reporting a failure; last lines of $log:"
        tail -n 15 "$log"
        f=1
    fi
    echo "   $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
