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
# uint32 format and clear errors for bad input. Then the defaults on small
# corpora (a val shard of ~1% of the documents, at least one, and at least one
# train shard; fewer than 2 documents refused), a byte-order mark dropped, the
# tokenizer found when run from another directory, every option's default in
# --help, and a failed write (file size limit) leaving no partial shard under
# its final name. One PASS/FAIL line per check.
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
expect_error write_shards_no_documents "hold 0 non-empty documents" $ws -o "$dir/e/x" "$dir/empty.txt"
expect_error write_shards_bad_option "unknown option" $ws --frobnicate "$dir/empty.txt"
expect_error write_shards_bad_shard_tokens "--shard-tokens" $ws --shard-tokens 0 "$dir/in/fortunes"
expect_error write_shards_bad_tokenizer "tokenizer file" $ws -t "$dir/in/docs/a.txt" "$dir/in/fortunes"
$ws --help | grep -q '^usage: write_shards' && pass write_shards_help || fail write_shards_help "no usage line"

# ---- defaults on small corpora: a val shard and at least one train shard
mkdir -p "$dir/small"
for i in 1 2 3; do echo "small document number $i." >"$dir/small/d$i.txt"; done
if $ws -o "$dir/s3/x" "$dir/small" 2>"$dir/s3.log" && [ -f "$dir/s3/x_val_000000.bin" ] &&
    [ -f "$dir/s3/x_train_000001.bin" ] && grep -q '^  val:   .*x_val_000000.bin, 1 documents' "$dir/s3.log" &&
    grep -q '^  train: .*x_train_000001.bin .. .*x_train_000001.bin, 1 shard, 2 documents' "$dir/s3.log"; then
    pass write_shards_small_corpus_gets_train_shard
else
    fail write_shards_small_corpus_gets_train_shard "$(ls "$dir/s3" 2>&1 | tr '\n' ' '); $(tail -n 3 "$dir/s3.log")"
fi
for i in $(seq 1 250); do echo "document $i of the medium corpus."; echo "%"; done >"$dir/medium.txt"
$ws -o "$dir/m/x" --delimiter % "$dir/medium.txt" 2>"$dir/m.log"
grep -q '^  val:   .*, 3 documents' "$dir/m.log" && grep -q '^  train: .*247 documents' "$dir/m.log" \
    && pass write_shards_val_is_one_percent || fail write_shards_val_is_one_percent "$(tail -n 2 "$dir/m.log")"
$ws -o "$dir/mc/x" --delimiter % --val-tokens 20 "$dir/medium.txt" 2>"$dir/mc.log"
grep -q '^  val:   .*, 2 documents' "$dir/mc.log" && pass write_shards_val_capped_by_val_tokens \
    || fail write_shards_val_capped_by_val_tokens "$(tail -n 2 "$dir/mc.log")"
echo "one lonely document" >"$dir/one.txt"
expect_error write_shards_one_document_refused "need at least 2" $ws -o "$dir/one/x" "$dir/one.txt"
[ ! -e "$dir/one" ] && pass write_shards_refusal_writes_nothing || fail write_shards_refusal_writes_nothing "$(ls "$dir/one")"

# ---- a UTF-8 byte-order mark at the start of a JSONL or text file is dropped
printf '\xef\xbb\xbf{"text": "bom jsonl one"}\n{"text": "bom jsonl two"}\n' >"$dir/bom.jsonl"
printf '\xef\xbb\xbfbom text' >"$dir/bom.txt"
if $ws -o "$dir/bom/x" "$dir/bom.jsonl" "$dir/bom.txt" 2>"$dir/bom.log"; then
    for f in "$dir"/bom/x_val_*.bin "$dir"/bom/x_train_*.bin; do $tok decode "$f"; done >"$dir/bom.decoded"
    printf '<|endoftext|>bom jsonl one<|endoftext|>bom jsonl two<|endoftext|>bom text' | cmp -s - "$dir/bom.decoded" \
        && pass write_shards_bom_dropped || fail write_shards_bom_dropped "decoded: $(head -c 200 "$dir/bom.decoded")"
else
    fail write_shards_bom_dropped "$(tail -n 2 "$dir/bom.log")"
fi

# ---- the tokenizer is found from another directory; a lone copy says to pass -t
root=$(pwd)
if (cd "$dir" && "$root/$ws" -o "$dir/elsewhere/x" "$dir/small") 2>"$dir/elsewhere.log"; then
    pass write_shards_tokenizer_found_from_elsewhere
else
    fail write_shards_tokenizer_found_from_elsewhere "$(tail -n 2 "$dir/elsewhere.log")"
fi
cp "$ws" "$dir/lone_write_shards"
expect_error write_shards_tokenizer_missing_says_t "pass -t PATH" bash -c "cd '$dir' && ./lone_write_shards '$dir/small'"

# ---- --help gives every option's default
help=$($ws --help)
options=$(grep -cE '^  -' <<<"$help")
defaults=$(grep -cE '\(default' <<<"$help")
if [ "$options" -ge 9 ] && [ "$defaults" -eq "$options" ] && grep -q -- '--val-tokens N .*(default: --shard-tokens, 100000000)' <<<"$help"; then
    pass write_shards_help_gives_defaults
else
    fail write_shards_help_gives_defaults "$options options, $defaults defaults"
fi

# ---- a failed write leaves no partial shard under its final name (file size limit: 8 KiB)
big=$(printf 'word%.0s ' $(seq 1 3000))
for i in 1 2 3 4; do echo "$big $i"; echo "%"; done >"$dir/big.txt"
(ulimit -f 8; trap '' XFSZ; exec "$ws" -o "$dir/full/x" --delimiter % "$dir/big.txt") >/dev/null 2>"$dir/full.log"
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "write failed" "$dir/full.log" && ! ls "$dir/full"/*.tmp >/dev/null 2>&1 &&
    [ ! -e "$dir/full/x_train_000001.bin" ]; then
    pass write_shards_failed_write_leaves_no_partial_file
else
    fail write_shards_failed_write_leaves_no_partial_file "exit $rc, files: $(ls "$dir/full" 2>&1 | tr '\n' ' '), $(tail -n 1 "$dir/full.log")"
fi
(ulimit -f 8; trap '' XFSZ; exec "$tok" encode "$dir/big.txt" -o "$dir/full/ids.bin") >/dev/null 2>"$dir/ids.log"
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ ! -e "$dir/full/ids.bin" ] && [ ! -e "$dir/full/ids.bin.tmp" ]; then
    pass tokenize_failed_write_leaves_no_partial_file
else
    fail tokenize_failed_write_leaves_no_partial_file "exit $rc, $(ls "$dir/full" | tr '\n' ' '), $(tail -n 1 "$dir/ids.log")"
fi
