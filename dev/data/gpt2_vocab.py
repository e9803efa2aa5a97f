#!/usr/bin/env python3
"""gpt2_vocab.py — read GPT-2's encoder.json + vocab.bpe, write data/gpt2_tokenizer.bin.

GPT-2 stores its 50257 tokens as JSON strings in a "printable" alphabet: each
byte value 0..255 is shown as one Unicode character (printable Latin-1 bytes
as themselves, the other 68 bytes as U+0100..U+0143 in byte order). vocab.bpe
lists the 50000 merges in priority order. This module undoes the alphabet,
checks that merge number i created token 256 + i (so a token's id is also its
merge rank, which is what llmc/tokenizer.h relies on), and writes the token
byte strings in llm.c's tokenizer file format:

    header  256 uint32: [0] 20240328 (magic), [1] 2 (version),
            [2] vocab size V, [3] end-of-text id
    tokens  V records: uint8 length L (1..255), then L bytes

Used as a module by dev/data/tiktoken_compare.py (same files, same ranks).
usage: gpt2_vocab.py ENCODER_JSON VOCAB_BPE OUT_BIN
"""
import json
import os
import struct
import sys

MAGIC = 20240328
VERSION = 2
EOT_TEXT = "<|endoftext|>"


def byte_alphabet():
    """dict: printable character -> byte value (GPT-2's byte-to-unicode table, inverted)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    char_of = {b: chr(b) for b in printable}
    next_code = 256
    for b in range(256):
        if b not in char_of:
            char_of[b] = chr(next_code)
            next_code += 1
    return {c: b for b, c in char_of.items()}


def to_bytes(text, alphabet):
    try:
        return bytes(alphabet[c] for c in text)
    except KeyError as e:
        raise SystemExit(f"error: token {text!r} has a character {e} outside GPT-2's byte alphabet")


def load_ranks(encoder_json, vocab_bpe):
    """(ranks: dict bytes -> id for the 50256 mergeable tokens, eot id). Dies on any inconsistency."""
    alphabet = byte_alphabet()
    with open(encoder_json, encoding="utf-8") as f:
        encoder = json.load(f)
    if EOT_TEXT not in encoder:
        raise SystemExit(f"error: {encoder_json}: no {EOT_TEXT} entry")
    eot = encoder.pop(EOT_TEXT)
    ranks = {to_bytes(text, alphabet): i for text, i in encoder.items()}
    if len(ranks) != len(encoder):
        raise SystemExit(f"error: {encoder_json}: two entries decode to the same bytes")
    for b in range(256):
        if bytes([b]) not in ranks:
            raise SystemExit(f"error: {encoder_json}: byte {b} has no single-byte token")

    with open(vocab_bpe, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines[0].startswith("#version"):
        raise SystemExit(f"error: {vocab_bpe}: first line should be '#version ...', got {lines[0]!r}")
    merges = [line for line in lines[1:] if line]
    for i, line in enumerate(merges):
        parts = line.split(" ")
        if len(parts) != 2:
            raise SystemExit(f"error: {vocab_bpe}: line {i + 2} is not two tokens: {line!r}")
        merged = to_bytes(parts[0], alphabet) + to_bytes(parts[1], alphabet)
        if ranks.get(merged) != 256 + i:
            raise SystemExit(f"error: merge {i} ({line!r}) does not create token {256 + i} of {encoder_json}")
    if sorted(ranks.values()) != list(range(len(ranks))) or eot != len(ranks):
        raise SystemExit(f"error: {encoder_json}: ids are not 0..{len(ranks) - 1} plus end-of-text {len(ranks)}")
    return ranks, eot


def write_tokenizer_bin(path, ranks, eot):
    tokens = [None] * (len(ranks) + 1)
    for b, i in ranks.items():
        tokens[i] = b
    tokens[eot] = EOT_TEXT.encode()
    tmp = path + ".tmp"  # renamed to path only when complete: never a half-written tokenizer file
    with open(tmp, "wb") as f:
        header = [MAGIC, VERSION, len(tokens), eot] + [0] * 252
        f.write(struct.pack("<256I", *header))
        for t in tokens:
            if not 1 <= len(t) <= 255:
                raise SystemExit(f"error: token {t!r} is {len(t)} bytes; the file format allows 1..255")
            f.write(bytes([len(t)]) + t)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    ranks, eot = load_ranks(sys.argv[1], sys.argv[2])
    write_tokenizer_bin(sys.argv[3], ranks, eot)
    print(f"wrote {sys.argv[3]}: {len(ranks) + 1} tokens, end-of-text id {eot}")


if __name__ == "__main__":
    main()
