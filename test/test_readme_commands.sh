#!/usr/bin/env bash
# test_readme_commands.sh — the README's commands that need no GPU, run
# verbatim: every line of a ```bash block in the sections on the CPU
# reference, the data and the trainer that starts with build/tools/,
# ./train_cpu, or ./train_gpt --help / --check, in README order, in a scratch
# directory that links the repository's build/, data/, dev/, README.md and
# binaries (so out/ is written there, not in the checkout). Each must exit 0.
# Lines with ./train_gpt SKIP when ./train_gpt is not built or older than its
# sources (CI builds it).
# Also: `make -n train` prints the NCCL / MPI / utf8proc detection lines once.
set -u
cd "$(dirname "$0")/.."
source test/expect.bash
root=$(pwd)
TMP=$(mktemp -d /tmp/packlm_readme.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for f in build data dev README.md train_cpu train_gpt; do ln -s "$root/$f" "$TMP/$f"; done

mapfile -t commands < <(awk '/^## / {section = /^## (The CPU reference|Data|The trainer)/}
    /^```bash/ {inside = 1; next} /^```/ {inside = 0} inside && section' README.md |
    grep -E '^(build/tools/|\./train_cpu|\./train_gpt --(help|check))')
[ ${#commands[@]} -ge 6 ] && echo "PASS readme_commands_found: ${#commands[@]}" \
    || echo "FAIL readme_commands_found: only ${#commands[@]} runnable commands in README.md"
for i in "${!commands[@]}"; do
    cmd=${commands[$i]}
    name="readme_command_$((i + 1)): ${cmd%%#*}"
    if [[ $cmd == ./train_gpt* ]] && ! train_gpt_usable; then
        echo "SKIP $name (./train_gpt is not built or older than its sources: make train_gpt)"
        continue
    fi
    if out=$(cd "$TMP" && bash -c "$cmd" 2>&1); then
        echo "PASS $name"
    else
        echo "FAIL $name: exit status $?: $(tail -n 3 <<<"$out")"
    fi
done

detect=$(make -n train 2>&1 | grep -cE '^(NCCL|MPI): ')
[ "$detect" -eq 2 ] && echo "PASS make_train_detection_lines_once" \
    || echo "FAIL make_train_detection_lines_once: $detect NCCL/MPI lines in make -n train (want 2)"
