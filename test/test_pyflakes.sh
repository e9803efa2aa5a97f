#!/usr/bin/env bash
# test_pyflakes.sh — every Python file of the tree passes pyflakes (undefined
# names, unused imports, redefinitions): one PASS/FAIL line per file. Python
# here is the PyTorch reference, data scripts and benchmarks, most of which
# only run on a GPU machine, so a name error would otherwise land unseen.
# SKIPs when pyflakes is not installed (apt-get install python3-pyflakes).
set -u
cd "$(dirname "$0")/.."
if command -v pyflakes3 >/dev/null; then
    lint=(pyflakes3)
elif command -v pyflakes >/dev/null; then
    lint=(pyflakes)
elif python3 -m pyflakes --version >/dev/null 2>&1; then
    lint=(python3 -m pyflakes)
else
    echo "SKIP pyflakes: pyflakes is not installed (apt-get install python3-pyflakes)"
    exit 0
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.py')
else
    mapfile -t files < <(find . -name '*.py' -not -path './build/*' -not -path './.git/*' | sed 's|^\./||' | sort)
fi
if [ "${#files[@]}" -eq 0 ]; then
    echo "FAIL pyflakes_found_files: no Python file found under $(pwd)"
    exit 1
fi
for f in "${files[@]}"; do
    [ -f "$f" ] || continue # deleted in the work tree, still in the index
    if out=$("${lint[@]}" "$f" 2>&1); then
        echo "PASS pyflakes $f"
    else
        echo "FAIL pyflakes $f: $(echo "$out" | head -n 3 | tr '\n' ' ')"
    fi
done
