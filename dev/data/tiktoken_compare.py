#!/usr/bin/env python3
"""tiktoken_compare.py — check our C tokenizer against tiktoken, and time both.

1. Builds a tiktoken Encoding from GPT-2's encoder.json + vocab.bpe (the same
   files data/gpt2_tokenizer.bin was converted from; no network needed).
2. Writes the test vectors of test/data/tokenizer_vectors.tsv: fixed strings
   with tiktoken's ids. Valid UTF-8 strings use encode_ordinary. Strings with
   invalid UTF-8 cannot be given to tiktoken as text; for them the text is
   decoded with "surrogateescape" (each invalid byte becomes one lone
   surrogate: neither letter, number nor space), split with tiktoken's own
   pattern, and each piece's bytes are encoded by tiktoken's single-piece BPE.
   That same route is checked against encode_ordinary on the valid strings.
3. Encodes every *.txt under the corpus directory, plus a generated file of
   random characters, with tiktoken (encode_ordinary, one thread) and with
   build/tools/tokenize (one thread); compares the ids; prints a table with
   both speeds (median of --repeat runs).

usage: tiktoken_compare.py --vocab-dir DIR --corpus-dir DIR --tokenize BIN --vectors-out TSV [--repeat 3]
"""
import argparse
import array
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import regex
import tiktoken

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_vocab import EOT_TEXT, load_ranks  # noqa: E402

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

CASES = [
    ("ascii_sentence", b"Hello world! This is a test of the tokenizer."),
    ("contractions", b"I'm sure you'll see they've done it, haven't they? She'd said it's 'OK', we're fine. DON'T 'S"),
    ("apostrophes", b"'''s ''re ' s' 'll' x'd 'm"),
    ("digits", b"1234567890 3.14159 1,000,000 2024-11-25 v1.2.3 007 99999999999"),
    ("whitespace_runs", b"a  b   c    d\t\te     f\n"),
    ("tabs_newlines", b"line1\nline2\r\n\tindented\n\n\n  spaced\t\n end\n"),
    ("trailing_spaces", b"word   "),
    ("leading_spaces", b"   leading words"),
    ("only_whitespace", b" \t\n \n\n   "),
    ("accented", "café naïve résumé Ångström Zürich façade São Paulo".encode()),
    ("greek_cyrillic", "Αλφα βήτα γάμμα — Привет, мир! Ёлка".encode()),
    ("cjk", "中文分词测试。日本語のテキスト、한국어 텍스트입니다".encode()),
    ("emoji", "🎉👍🏽 family: 👨\u200d👩\u200d👧 flags 🇫🇷 ❤️ done".encode()),
    ("unicode_numbers", "Ⅻ ½ ٣٤٥ ²³ ① ¼".encode()),
    ("unicode_spaces", "a\u00a0b\u3000c\u2028d\u0085e\u2003 f\u200bg\ufeffh".encode()),
    ("punctuation", b"!!! ??? ... --- (a) [b] {c} <d> @#$%^&* \"quoted\""),
    ("code", b"def f(x):\n    return x**2  # square\n\nint main() { return 0; }\n"),
    ("endoftext_literal", b"<|endoftext|> is ordinary text here"),
    ("long_word", b"Pneumonoultramicroscopicsilicovolcanoconiosis " + b"a" * 300),
    ("control_chars", b"a\x00b\x01\x1c\x1f c\x7f d\x0b\x0ce"),
    ("single_space", b" "),
    ("empty", b""),
    ("invalid_bytes", b"bad \xff\xfe bytes \xc3( \xe2\x82 end"),
    ("invalid_continuations", b"\x80\x80abc\xbf \xbf\xbf"),
    ("overlong_surrogate_toolarge", b"\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 x"),
    ("truncated_at_end", b"caf\xc3"),
    ("invalid_between_letters", b"\xffabc\xff 123\xff \xff"),
]

RANDOM_POOL = (
    ["abc", "XYZ", "the", " ", "  ", "\t", "\n", "\r\n", "'", "'s", "'ll", "'RE", "0", "42", ".", ",", "!?", "-", "é",
     "ß", "中", "文", "の", "한", "🎉", "👍🏽", "\u00a0", "\u3000", "\u0085", "\u2028", "\x1c", "\x0b", "٣", "Ⅻ", "½",
     "ǅ", "\u200b", "\ufeff", "ñ", "Ж", "ﬁ", "$", "€", "µ"]
)


def gpt2_pattern():
    """tiktoken's own gpt2 pattern when it can be imported (newer versions write the
    same rule with possessive quantifiers), else GPT-2's original pattern."""
    try:
        from tiktoken_ext.openai_public import r50k_pat_str
        print(f"pattern: tiktoken_ext.openai_public.r50k_pat_str = {r50k_pat_str!r}")
        return r50k_pat_str
    except ImportError:
        print(f"pattern: tiktoken_ext has no r50k_pat_str; using GPT-2's original {GPT2_PATTERN!r}")
        return GPT2_PATTERN


def build_encoding(vocab_dir, pattern):
    ranks, eot = load_ranks(os.path.join(vocab_dir, "encoder.json"), os.path.join(vocab_dir, "vocab.bpe"))
    try:
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
        theirs = data_gym_to_mergeable_bpe_ranks(os.path.join(vocab_dir, "vocab.bpe"),
                                                 os.path.join(vocab_dir, "encoder.json"))
        print("ranks: tiktoken's own loader", "agrees" if theirs == ranks else "DISAGREES", "with gpt2_vocab.py")
    except Exception as e:  # loader API differs between versions; ours is checked against the files anyway
        print(f"ranks: tiktoken's loader not usable offline ({type(e).__name__}); using gpt2_vocab.py's")
    enc = tiktoken.Encoding(name="gpt2_local", pat_str=pattern, mergeable_ranks=ranks,
                            special_tokens={EOT_TEXT: eot})
    return enc


def encode_by_pieces(enc, pattern, data):
    text = data.decode("utf-8", "surrogateescape")
    ids = []
    for piece in regex.findall(pattern, text):
        ids += enc._encode_single_piece(piece.encode("utf-8", "surrogateescape"))  # private, bytes accepted
    return ids


def write_vectors(enc, pattern, path):
    agree = 0
    with open(path, "w") as f:
        f.write("# name\tinput bytes (hex)\ttiktoken gpt2 ids; written by dev/data/tiktoken_compare.py "
                f"(tiktoken {tiktoken.__version__})\n")
        for name, data in CASES:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            pieces = encode_by_pieces(enc, pattern, data)
            if text is not None:
                ids = enc.encode_ordinary(text)
                agree += ids == pieces
                if ids != pieces:
                    print(f"NOTE {name}: piece route {pieces} differs from encode_ordinary {ids}")
            else:
                ids = pieces
            f.write(f"{name}\t{data.hex()}\t{' '.join(map(str, ids))}\n")
    valid = sum(1 for _, d in CASES if is_utf8(d))
    print(f"vectors: {len(CASES)} cases written to {path}; piece route == encode_ordinary on {agree}/{valid} valid")


def is_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def random_text(path, n_chars, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(rng.choice(RANDOM_POOL) for _ in range(n_chars)))


def time_tiktoken(enc, text, repeat):
    times, ids = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        ids = enc.encode_ordinary(text)
        times.append(time.perf_counter() - start)
    return ids, statistics.median(times)


def run_ours(tokenize, path, repeat, tmp):
    out = os.path.join(tmp, "ids.bin")
    r = subprocess.run([tokenize, "encode", "--repeat", str(repeat), "-o", out, path], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"error: {tokenize} failed on {path}: {r.stderr}")
    seconds = float(r.stderr.split("median of")[1].split(":")[1].split("s,")[0])
    ids = array.array("i")
    with open(out, "rb") as f:
        ids.frombytes(f.read())
    return ids.tolist(), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab-dir", required=True)
    ap.add_argument("--corpus-dir", required=True)
    ap.add_argument("--tokenize", required=True)
    ap.add_argument("--vectors-out", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pattern = gpt2_pattern()
    enc = build_encoding(args.vocab_dir, pattern)
    print(f"tiktoken {tiktoken.__version__}")
    write_vectors(enc, pattern, args.vectors_out)

    tmp = tempfile.mkdtemp()
    random_path = os.path.join(tmp, "random_mix.txt")
    random_text(random_path, 400_000, seed=1234)
    files = sorted(os.path.join(args.corpus_dir, f) for f in os.listdir(args.corpus_dir) if f.endswith(".txt"))
    files.append(random_path)
    rows, total = [], dict(bytes=0, tokens=0, mismatches=0, t_tik=0.0, t_ours=0.0)
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        want, t_tik = time_tiktoken(enc, data.decode("utf-8"), args.repeat)
        got, t_ours = run_ours(args.tokenize, path, args.repeat, tmp)
        n = min(len(want), len(got))
        diff = [i for i in range(n) if want[i] != got[i]]
        mismatches = len(diff) + abs(len(want) - len(got))
        if mismatches:
            first = diff[0] if diff else n
            lo = max(0, first - 5)
            print(f"MISMATCH {os.path.basename(path)} at token {first}: tiktoken {want[lo:first + 5]} "
                  f"ours {got[lo:first + 5]} text {enc.decode_bytes(want[lo:first + 5])!r}")
        rows.append((os.path.basename(path), len(data), len(want), mismatches, len(want) / t_tik, len(want) / t_ours))
        total["bytes"] += len(data)
        total["tokens"] += len(want)
        total["mismatches"] += mismatches
        total["t_tik"] += t_tik
        total["t_ours"] += t_ours
    print(f"\n{'file':<18}{'MB':>7}{'tokens':>10}{'mismatch':>9}{'tiktoken tok/s':>16}{'ours tok/s':>13}")
    for name, size, tokens, mism, s_tik, s_ours in rows:
        print(f"{name:<18}{size / 1e6:>7.2f}{tokens:>10}{mism:>9}{s_tik:>16.3e}{s_ours:>13.3e}")
    print(f"{'TOTAL':<18}{total['bytes'] / 1e6:>7.2f}{total['tokens']:>10}{total['mismatches']:>9}"
          f"{total['tokens'] / total['t_tik']:>16.3e}{total['tokens'] / total['t_ours']:>13.3e}")
    print("RESULT", "PASS" if total["mismatches"] == 0 else "FAIL", f"{total['mismatches']} mismatching tokens")


if __name__ == "__main__":
    main()
