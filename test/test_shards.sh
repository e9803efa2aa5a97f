#!/usr/bin/env bash
# test_shards.sh — build/tools/shard_info against malformed shards.
#
# Writes good and broken llm.c-format shards into a temporary directory (with
# python3) and checks that shard_info accepts the good ones and, for each
# broken one, exits non-zero (not by a signal) with a message on stderr that
# names the file and the problem. One PASS/FAIL line per case.
set -u
cd "$(dirname "$0")/.."
tool=build/tools/shard_info
if [ ! -x "$tool" ]; then
    echo "FAIL shards_tool_built: $tool is missing (run make tools)"
    exit 1
fi
dir=$(mktemp -d /tmp/packlm_shards.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# write_shard NAME MAGIC VERSION COUNT WIDTH TOKENS [EXTRA_BYTES] [CUT_BYTES]
# TOKENS is a comma-separated list; EXTRA_BYTES appends zero bytes, CUT_BYTES
# drops bytes from the end.
write_shard() {
    python3 - "$dir/$1" "$2" "$3" "$4" "$5" "$6" "${7:-0}" "${8:-0}" <<'EOF'
import struct, sys
path, magic, version, count, width, tokens, extra, cut = sys.argv[1:]
ids = [int(t) for t in tokens.split(",") if t]
header = struct.pack("<256i", int(magic), int(version), int(count), *([0] * 253))
body = struct.pack("<%d%s" % (len(ids), "H" if width == "2" else "I"), *ids)
data = header + body + b"\0" * int(extra)
if int(cut):
    data = data[: -int(cut)]
open(path, "wb").write(data)
EOF
}

docs="50256,10,11,12,50256,20,21,50256,30"           # 3 documents, 9 tokens
write_shard good_a.bin 20240520 1 9 2 "$docs"
write_shard good_b.bin 20240801 7 9 4 "$docs"
write_shard bad_magic.bin 12345678 1 9 2 "$docs"
write_shard bad_version.bin 20240520 3 9 2 "$docs"
write_shard truncated.bin 20240520 1 9 2 "$docs" 0 5
write_shard count_mismatch.bin 20240520 1 7 2 "$docs"
write_shard extra_bytes.bin 20240801 7 9 4 "$docs" 2
write_shard zero_count.bin 20240520 1 0 2 ""
write_shard big_token.bin 20240520 1 9 2 "50256,10,11,12,50256,50300,21,50256,30"
write_shard big_token32.bin 20240801 7 9 4 "50256,10,11,12,50256,20,21,50256,700000"
write_shard no_eot.bin 20240520 1 9 2 "10,50256,11,12,50256,20,21,50256,30"
: >"$dir/empty.bin"
head -c 100 "$dir/good_a.bin" >"$dir/short_header.bin"
mkdir "$dir/dir_shard.bin"

# expect_error NAME EXPECTED_SUBSTRING ARGS...
expect_error() {
    local name=$1 want=$2
    shift 2
    local err rc
    err=$("$tool" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "FAIL shards_$name: exit status 0, expected an error containing '$want'"
    elif [ "$rc" -ge 128 ]; then
        echo "FAIL shards_$name: killed by a signal (status $rc): $err"
    elif [[ "$err" != *"$want"* ]]; then
        echo "FAIL shards_$name: message '$err' lacks '$want'"
    else
        echo "PASS shards_$name"
    fi
}

# the message must name the file and the problem
expect_error wrong_magic "shard '$dir/bad_magic.bin': bad magic 12345678" "$dir/bad_magic.bin"
expect_error bad_version "shard '$dir/bad_version.bin': bad version 3 for magic 20240520" "$dir/bad_version.bin"
expect_error truncated "shard '$dir/truncated.bin': truncated: header says 9 tokens (18 bytes) but only 13 bytes" "$dir/truncated.bin"
expect_error short_header "shard '$dir/short_header.bin': truncated header: file has 100 bytes" "$dir/short_header.bin"
expect_error count_mismatch "shard '$dir/count_mismatch.bin': header token count mismatch: header says 7 tokens" "$dir/count_mismatch.bin"
expect_error extra_bytes "shard '$dir/extra_bytes.bin': header token count mismatch: header says 9 tokens (36 bytes) but 38 bytes" "$dir/extra_bytes.bin"
expect_error zero_count "shard '$dir/zero_count.bin': header token count is 0" "$dir/zero_count.bin"
expect_error empty_file "shard '$dir/empty.bin': empty file" "$dir/empty.bin"
expect_error token_above_vocab "shard '$dir/big_token.bin': token id 50300 at index 5 is not below the vocabulary size 50257" "$dir/big_token.bin"
expect_error token_above_vocab_u32 "token id 700000 at index 8 is not below the vocabulary size 50257" "$dir/big_token32.bin"
expect_error token_above_small_vocab "token id 50256 at index 0 is not below the vocabulary size 100" -v 100 "$dir/good_a.bin"
expect_error missing_leading_eot "shard '$dir/no_eot.bin': first token is 10, not the end-of-text token 50256" "$dir/no_eot.bin"
expect_error glob_matches_nothing "no shard files match '$dir/nothing_*.bin'" "$dir/nothing_*.bin"
expect_error not_a_file "shard '$dir/dir_shard.bin': not a regular file" "$dir/dir_shard.bin"
expect_error bad_among_good "shard '$dir/bad_magic.bin'" "$dir/*.bin"
expect_error unknown_option "unknown option '--frobnicate'" --frobnicate "$dir/good_a.bin"
expect_error bad_T "-t: 'abc' is not an integer" -t abc "$dir/good_a.bin"
expect_error no_pattern "no shard pattern given"
expect_error T_out_of_range "option -t: 0 is not in [1, 1048576]" -t 0 "$dir/good_a.bin"

out=$("$tool" -t 4 "$dir/good_*.bin" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [[ "$out" == *"total: 2 shards, 18 tokens, 6 documents, all valid"* ]] &&
    [[ "$out" == *"padding"*"documents split"*"mean segment length"* ]]; then
    echo "PASS shards_good_accepted"
else
    echo "FAIL shards_good_accepted: status $rc, output: $out"
fi
# documents of 4, 3, 2 tokens in rows of 4 (per shard): chunk rows 4 | 3+1 | 1
# split the last document (4 segments), bestfit rows 4 | 3 | 2 split none;
# both pad 3 of 12 slots
if [[ "$out" == *"packing chunk, T 4:"*"padding 25.00%, documents split 33.33%, mean segment length 2.2"* ]] &&
    [[ "$out" == *"packing bestfit, T 4"*"padding 25.00%, documents split 0.00%, mean segment length 3.0"* ]]; then
    echo "PASS shards_packing_statistics"
else
    echo "FAIL shards_packing_statistics: output: $out"
fi
if "$tool" --help | grep -q "usage: shard_info"; then
    echo "PASS shards_help"
else
    echo "FAIL shards_help: --help printed no usage"
fi
# the embedded default corpus must pass full validation
if out=$("$tool" "data/fortunes_*.bin" 2>&1) && [[ "$out" == *"all valid"* ]]; then
    echo "PASS shards_embedded_corpus_valid"
else
    echo "FAIL shards_embedded_corpus_valid: $out"
fi
