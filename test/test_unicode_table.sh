#!/usr/bin/env bash
# test_unicode_table.sh — llmc/unicode_class_table.h is what its generator
# (dev/data/gen_unicode_classes.c, from the installed utf8proc) writes today.
# (test_tokenizer.c checks the table's order and landmark characters.)
set -u
cd "$(dirname "$0")/.."
gen=build/tools/gen_unicode_classes
if [ ! -x "$gen" ]; then
    if ! pkg-config --exists libutf8proc 2>/dev/null && [ ! -e /usr/include/utf8proc.h ]; then
        echo "SKIP unicode_table_matches_generator: utf8proc is not installed, so $gen was not built"
        exit 0
    fi
    echo "FAIL unicode_table_generator_built: $gen is missing (run make tools)"
    exit 1
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
if "$gen" >"$tmp" 2>/dev/null && cmp -s "$tmp" llmc/unicode_class_table.h; then
    echo "PASS unicode_table_matches_generator"
else
    echo "FAIL unicode_table_matches_generator: regenerate with '$gen > llmc/unicode_class_table.h' ($(diff "$tmp" llmc/unicode_class_table.h | head -n 4 | tr '\n' ' '))"
fi
