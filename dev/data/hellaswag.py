"""
hellaswag.py -- HellaSwag's jsonl (or any multiple-choice set in its shape)
as the .bin eval file that `train_gpt --eval FILE` and llm.c read.

    python3 dev/data/hellaswag.py hellaswag_val.jsonl hellaswag_val.bin [--tokenizer data/gpt2_tokenizer.bin]

Each jsonl line: {"ctx": "...", "endings": ["...", ...], "label": 2} (HellaSwag
also has other fields; they are ignored). As llm.c does, the context is
encoded alone and each ending as " " + ending, with the GPT-2 tokenizer:
tiktoken's "gpt2" when installed, else our C tokenizer (build/tools/tokenize,
the same ids). File format: llmc/mc_eval.h (256 int32 header: 20240522, 1,
examples, longest example in bytes; then per example uint16 values 65535,
size in bytes, index, label, completions, context length, context tokens,
and per completion its length and tokens).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

MAGIC, VERSION, START = 20240522, 1, 65535


def make_encoder(tokenizer_path):
    """A function text -> GPT-2 token ids."""
    try:
        import tiktoken
        enc = tiktoken.get_encoding("gpt2")
        return enc.encode_ordinary
    except Exception:
        pass
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools", "tokenize")
    if not os.path.exists(tool):
        sys.exit("hellaswag.py: needs tiktoken or build/tools/tokenize (make tools)")

    def encode(text):
        with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            out = subprocess.run([tool, "encode", "-t", tokenizer_path, f.name], check=True,
                                 capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    return encode


def example_values(index, ctx_tokens, ending_tokens, label):
    """The uint16 values of one example, its size field filled in."""
    values = [START, 0, index, label, len(ending_tokens), len(ctx_tokens), *ctx_tokens]
    for tokens in ending_tokens:
        values += [len(tokens), *tokens]
    values[1] = 2 * len(values)
    if max(values[2:]) >= START or values[1] >= 65536:
        raise ValueError(f"example {index}: too long or a token id does not fit uint16 below 65535")
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl")
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default="data/gpt2_tokenizer.bin")
    args = ap.parse_args()
    encode = make_encoder(args.tokenizer)
    examples = []
    with open(args.jsonl, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            endings, label = item["endings"], int(item["label"])
            if not 0 <= label < len(endings):
                sys.exit(f"{args.jsonl}:{line_no}: label {label} but {len(endings)} endings")
            values = example_values(len(examples), encode(item["ctx"]),
                                    [encode(" " + e) for e in endings], label)
            examples.append(np.array(values, dtype=np.uint16))
    if not examples:
        sys.exit(f"{args.jsonl}: no examples")
    header = np.zeros(256, dtype=np.int32)
    header[:4] = [MAGIC, VERSION, len(examples), max(2 * e.size for e in examples)]
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        for e in examples:
            f.write(e.tobytes())
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(examples)} examples")


if __name__ == "__main__":
    main()
