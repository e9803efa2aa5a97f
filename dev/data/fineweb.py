#!/usr/bin/env python3
"""fineweb.py — download a public text dataset and write llm.c-format GPT-2 token shards.

For users with internet access (Hugging Face `datasets`, `tiktoken`, `numpy`;
the packlm build machines have no network and never run this). Writes the
same format as build/tools/write_shards:

  OUT_DIR/NAME_val_000000.bin, OUT_DIR/NAME_train_000001.bin, ...
  header 256 int32: [0] 20240520, [1] 1, [2] token count; then uint16 ids.
  Every document is <|endoftext|> (50256) + tiktoken "gpt2" ids of its text;
  a shard holds whole documents (so it starts with 50256) and is closed
  before the document that would take it past --shard-tokens; the first
  shard (val) holds --val-tokens.

Datasets:
  fineweb-edu      HuggingFaceFW/fineweb-edu, config sample-10BT ("text" field)
  tinystories      roneneldan/TinyStories, train split ("text" field)
  tinyshakespeare  karpathy's tiny_shakespeare input.txt; one document per
                   blank-line-separated speech

usage: fineweb.py {fineweb-edu,tinystories,tinyshakespeare} [-o OUT_DIR]
                  [--shard-tokens N] [--val-tokens N] [--max-docs N] [--workers N]
"""
import argparse
import multiprocessing as mp
import os
import urllib.request

np = None  # numpy, imported in main() so that --help works without it

MAGIC, VERSION, HEADER_INTS = 20240520, 1, 256
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"

_encoding = None


def encode_document(text):
    """<|endoftext|> + ids, as uint16 (runs in worker processes)."""
    global _encoding
    if _encoding is None:
        import tiktoken
        _encoding = tiktoken.get_encoding("gpt2")
    eot = _encoding.eot_token
    ids = np.array([eot] + _encoding.encode_ordinary(text), dtype=np.int64)
    assert ids.max() < 2**16, "GPT-2 ids fit in uint16"
    return ids.astype(np.uint16)


def documents(name, max_docs):
    if name == "tinyshakespeare":
        with urllib.request.urlopen(SHAKESPEARE_URL) as r:
            text = r.read().decode("utf-8")
        docs = (d for d in text.split("\n\n") if d.strip())
    else:
        from datasets import load_dataset
        if name == "fineweb-edu":
            ds = load_dataset("HuggingFaceFW/fineweb-edu", name="sample-10BT", split="train", streaming=True)
        else:
            ds = load_dataset("roneneldan/TinyStories", split="train", streaming=True)
        docs = (row["text"] for row in ds if row["text"])
    for i, doc in enumerate(docs):
        if max_docs and i >= max_docs:
            return
        yield doc


class ShardWriter:
    def __init__(self, prefix, shard_tokens, val_tokens):
        self.prefix, self.shard_tokens, self.val_tokens = prefix, shard_tokens, val_tokens
        self.index, self.parts, self.count, self.total_docs, self.total_tokens = 0, [], 0, 0, 0

    def add(self, ids):
        limit = self.val_tokens if self.index == 0 else self.shard_tokens
        if self.count and self.count + len(ids) > limit:
            self.flush()
        self.parts.append(ids)
        self.count += len(ids)
        self.total_docs += 1
        self.total_tokens += len(ids)

    def flush(self):
        if not self.count:
            return
        split = "val" if self.index == 0 else "train"
        path = f"{self.prefix}_{split}_{self.index:06d}.bin"
        header = np.zeros(HEADER_INTS, dtype=np.int32)
        header[:3] = (MAGIC, VERSION, self.count)
        with open(path + ".tmp", "wb") as f:  # renamed when complete: never a partial shard under its name
            f.write(header.tobytes())
            f.write(np.concatenate(self.parts).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        print(f"wrote {path}: {self.count} tokens, {len(self.parts)} documents")
        self.index, self.parts, self.count = self.index + 1, [], 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=["fineweb-edu", "tinystories", "tinyshakespeare"])
    ap.add_argument("-o", "--out-dir", default="data")
    ap.add_argument("--shard-tokens", type=int, default=100_000_000)
    ap.add_argument("--val-tokens", type=int, default=None, help="default: --shard-tokens")
    ap.add_argument("--max-docs", type=int, default=0, help="stop after this many documents (0: all)")
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() - 2))
    args = ap.parse_args()
    if args.shard_tokens < 1 or (args.val_tokens is not None and args.val_tokens < 1):
        ap.error("--shard-tokens and --val-tokens must be positive")
    global np
    import numpy
    np = numpy
    os.makedirs(args.out_dir, exist_ok=True)
    name = args.dataset.replace("-", "_")
    writer = ShardWriter(os.path.join(args.out_dir, name), args.shard_tokens, args.val_tokens or args.shard_tokens)
    with mp.Pool(args.workers) as pool:
        for ids in pool.imap(encode_document, documents(args.dataset, args.max_docs), chunksize=16):
            writer.add(ids)
    writer.flush()
    print(f"done: {writer.total_docs} documents, {writer.total_tokens} tokens, {writer.index} shards")


if __name__ == "__main__":
    main()
