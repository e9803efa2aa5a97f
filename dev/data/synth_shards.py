"""
synth_shards.py -- synthetic training shards for benchmarks: random token
ids in documents whose lengths are log-normal (median ~400, mean ~650
tokens, the distribution of DESIGN.md's "Numbers to beat"), each document
starting with end-of-text 50256. llm.c shard format: a 256-int32 header
(magic 20240520, version 1, token count) then uint16 tokens.

    python3 dev/data/synth_shards.py --out DIR [--tokens 20000000] [--shard-tokens 10000000] [--seed 0]

writes DIR/synth_val_000000.bin (the first shard) and DIR/synth_train_000001.bin ...
"""
import argparse
import math
import os
import sys

import numpy as np

EOT = 50256
MEDIAN_TOKENS, MEAN_TOKENS = 400.0, 650.0
SHARD_MAGIC, SHARD_VERSION = 20240520, 1


def document_lengths(rng, total_tokens):
    """Log-normal lengths: exp(mu) is the median, exp(mu + sigma^2/2) the mean."""
    mu = math.log(MEDIAN_TOKENS)
    sigma = math.sqrt(2.0 * math.log(MEAN_TOKENS / MEDIAN_TOKENS))
    lengths = []
    while sum(map(len, lengths)) < total_tokens:
        lengths.append(np.maximum(2, rng.lognormal(mu, sigma, 100000)).astype(np.int64))
    lengths = np.concatenate(lengths)
    return lengths[:np.searchsorted(np.cumsum(lengths), total_tokens) + 1]


def synthetic_tokens(rng, total_tokens):
    """total_tokens ids: documents of random ids < EOT, each led by EOT."""
    lengths = document_lengths(rng, total_tokens)
    tokens = rng.integers(0, EOT, size=int(lengths.sum()), dtype=np.uint16)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    tokens[starts] = EOT
    return tokens[:total_tokens], lengths


def write_shard(path, tokens):
    header = np.zeros(256, np.int32)
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, tokens.size)
    with open(path + ".tmp", "wb") as f:  # renamed when complete: never a partial shard under its name
        f.write(header.tobytes())
        f.write(tokens.astype(np.uint16).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--tokens", type=int, default=20_000_000, help="total tokens (val shard included)")
    ap.add_argument("--shard-tokens", type=int, default=10_000_000, help="tokens per shard")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.tokens < 2 * args.shard_tokens or args.shard_tokens < 1:
        sys.exit("synth_shards: need --tokens >= 2 * --shard-tokens >= 2 (one val shard and at least one train shard)")
    os.makedirs(args.out, exist_ok=True)
    tokens, lengths = synthetic_tokens(np.random.default_rng(args.seed), args.tokens)
    for i, lo in enumerate(range(0, args.tokens, args.shard_tokens)):
        shard = tokens[lo:lo + args.shard_tokens]
        shard[0] = EOT  # a shard starts a document (the reader requires it)
        write_shard(os.path.join(args.out, f"synth_{'val' if i == 0 else 'train'}_{i:06d}.bin"), shard)
    print(f"synth_shards: {args.tokens} tokens in {i + 1} shards under {args.out}; document length "
          f"median {np.median(lengths):.0f}, mean {lengths.mean():.0f}")


if __name__ == "__main__":
    main()
