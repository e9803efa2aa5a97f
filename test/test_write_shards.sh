#!/usr/bin/env bash
# test_write_shards.sh — build/tools/write_shards end to end.
#
# Writes a small corpus (a directory of text files, a fortune-style file split
# at "%" lines, a JSONL file with escapes) into shards, then checks: file
# names (first shard val, the rest train), each header (magic, version,
# token count = payload size), the first token of every shard is end-of-text,
# the shards pass build/tools/shard_info's validation, no shard exceeds its
# size unless it holds a single document, and decoding every shard in order
# gives back exactly "<|endoftext|>" + document for every document. Also the
# uint32 format and clear errors for bad input. One PASS/FAIL line per check.
set -u
cd "$(dirname "$0")/.."
ws=build/tools/write_shards tok=build/tools/tokenize info=build/tools/shard_info
for t in $ws $tok $info; do
    [ -x "$t" ] || { echo "FAIL write_shards_tools_built: $t is missing (run make tools)"; exit 1; }
done
dir=$(mktemp -d /tmp/packlm_write_shards.XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# ---- the corpus, and the text the shards must decode to (in input order)
mkdir -p "$dir/in/docs/sub"
printf 'First document.\nIt has two lines.\n' >"$dir/in/docs/a.txt"
printf 'Second: caf\xc3\xa9, \xe4\xb8\xad\xe6\x96\x87 and an emoji \xf0\x9f\x8e\x89.' >"$dir/in/docs/b.txt"
printf "Third, in a subdirectory; it's %s.\n" "$(printf 'long %.0s' $(seq 1 40))" >"$dir/in/docs/sub/c.txt"
printf 'fortune one\n%%\nfortune two\nhas two lines\n%%\n%%\nfortune three\n%%\n' >"$dir/in/fortunes"
printf '{"text": "json \\"one\\"\\n\\u00e9\\ud83c\\udf89", "id": 1}\n\n{"id": 2, "meta": {"text": 5}, "text": "json two"}\n' \
    >"$dir/in/data.jsonl"
{
    printf '<|endoftext|>'; cat "$dir/in/docs/a.txt"
    printf '<|endoftext|>'; cat "$dir/in/docs/b.txt"
    printf '<|endoftext|>'; cat "$dir/in/docs/sub/c.txt"
    printf '<|endoftext|>fortune one\n<|endoftext|>fortune two\nhas two lines\n<|endoftext|>fortune three\n'
    printf '<|endoftext|>json "one"\n\xc3\xa9\xf0\x9f\x8e\x89<|endoftext|>json two'
} >"$dir/expected.txt"

# ---- uint16 shards, small enough that there are several
if $ws -o "$dir/out/c" --shard-tokens 40 --val-tokens 25 --delimiter % \
    "$dir/in/docs" "$dir/in/fortunes" "$dir/in/data.jsonl" 2>"$dir/log"; then
    pass write_shards_runs
else
    fail write_shards_runs "exit status $?: $(tail -n 3 "$dir/log")"
fi
grep -q '^done: 8 documents' "$dir/log" && pass write_shards_summary \
    || fail write_shards_summary "no 'done: 8 documents' line: $(tail -n 1 "$dir/log")"
shards=("$dir"/out/c_val_*.bin "$dir"/out/c_train_*.bin)
names_ok=1
for i in "${!shards[@]}"; do
    want=$(printf '%s_%06d.bin' "$([ "$i" -eq 0 ] && echo val || echo train)" "$i")
    [ "$(basename "${shards[$i]}")" = "c_$want" ] || names_ok=0
done
[ ${#shards[@]} -ge 3 ] && [ $names_ok -eq 1 ] && pass write_shards_names \
    || fail write_shards_names "got: $(cd "$dir/out" && ls | tr '\n' ' ')"

# header fields and the first token, per shard: MAGIC VERSION WIDTH LIMIT_FIRST LIMIT_REST
check_headers() {
    local label=$1 magic=$2 version=$3 width=$4 first_limit=$5 limit=$6 ok=1 why=""
    shift 6
    local i=0
    for f in "$@"; do
        read -r m v n <<<"$(od -An -t d4 -N 12 "$f")"
        local size=$(stat -c %s "$f") first
        first=$(od -An -j 1024 -N "$width" -t "u$width" "$f" | tr -d ' ')
        local docs=$(( $(od -An -v -j 1024 -t "u$width" -w"$width" "$f" | grep -cx ' *50256') ))
        local cap=$([ $i -eq 0 ] && echo "$first_limit" || echo "$limit")
        [ "$m" = "$magic" ] || { ok=0; why="$f: magic $m"; }
        [ "$v" = "$version" ] || { ok=0; why="$f: version $v"; }
        [ $((1024 + n * width)) -eq "$size" ] || { ok=0; why="$f: count $n does not match $size bytes"; }
        [ "$first" = 50256 ] || { ok=0; why="$f: first token $first"; }
        [ "$n" -le "$cap" ] || [ "$docs" -eq 1 ] || { ok=0; why="$f: $n tokens > $cap with $docs documents"; }
        i=$((i + 1))
    done
    [ $ok -eq 1 ] && pass "$label" || fail "$label" "$why"
}
check_headers write_shards_uint16_headers 20240520 1 2 25 40 "${shards[@]}"
$info -t 16 "$dir/out/c_*.bin" >"$dir/info.log" 2>&1 && pass write_shards_shard_info_accepts \
    || fail write_shards_shard_info_accepts "$(tail -n 2 "$dir/info.log")"
for f in "${shards[@]}"; do $tok decode "$f"; done >"$dir/decoded.txt" 2>"$dir/decode.log"
cmp -s "$dir/decoded.txt" "$dir/expected.txt" && pass write_shards_decode_round_trip \
    || fail write_shards_decode_round_trip "decoded text differs from the documents (see cmp $dir/decoded.txt)"

# ---- uint32 shards of the same documents, shuffled: same multiset of documents
if $ws -o "$dir/out32/c" --uint32 --shuffle 7 --delimiter % --val-tokens 30 \
    "$dir/in/docs" "$dir/in/fortunes" "$dir/in/data.jsonl" 2>"$dir/log32"; then
    shards32=("$dir"/out32/c_val_*.bin "$dir"/out32/c_train_*.bin)
    check_headers write_shards_uint32_headers 20240801 7 4 30 100000000 "${shards32[@]}"
    split_docs() { sed 's/<|endoftext|>/\n@@DOC@@\n/g' | sort; }
    for f in "${shards32[@]}"; do $tok decode "$f"; done | split_docs >"$dir/shuffled.sorted"
    split_docs <"$dir/expected.txt" >"$dir/expected.sorted"
    if cmp -s "$dir/shuffled.sorted" "$dir/expected.sorted" && [ "$(grep -c '@@DOC@@' "$dir/shuffled.sorted")" -eq 8 ]; then
        pass write_shards_shuffle_keeps_documents
    else
        fail write_shards_shuffle_keeps_documents "the shuffled shards do not hold the same 8 documents"
    fi
else
    fail write_shards_uint32_runs "$(tail -n 2 "$dir/log32")"
fi

# ---- bad input: non-zero exit (not a signal) and a message naming the problem
expect_error() {
    local label=$1 needle=$2
    shift 2
    "$@" >"$dir/err.out" 2>"$dir/err.log"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$needle" "$dir/err.log"; then
        pass "$label"
    else
        fail "$label" "exit $rc, stderr: $(head -c 300 "$dir/err.log")"
    fi
}
printf '{"text": "ok"}\n{"text": "broken\n' >"$dir/bad.jsonl"
printf '{"body": "no text field"}\n' >"$dir/nofield.jsonl"
: >"$dir/empty.txt"
expect_error write_shards_missing_input "$dir/nope.txt" $ws -o "$dir/e/x" "$dir/nope.txt"
expect_error write_shards_bad_jsonl_line "bad.jsonl' line 2" $ws -o "$dir/e/x" "$dir/bad.jsonl"
expect_error write_shards_jsonl_missing_field 'string field "text"' $ws -o "$dir/e/x" "$dir/nofield.jsonl"
expect_error write_shards_no_documents "no documents" $ws -o "$dir/e/x" "$dir/empty.txt"
expect_error write_shards_bad_option "unknown option" $ws --frobnicate "$dir/empty.txt"
expect_error write_shards_bad_shard_tokens "--shard-tokens" $ws --shard-tokens 0 "$dir/in/fortunes"
expect_error write_shards_bad_tokenizer "tokenizer file" $ws -t "$dir/in/docs/a.txt" "$dir/in/fortunes"
$ws --help | grep -q '^usage: write_shards' && pass write_shards_help || fail write_shards_help "no usage line"
