#!/usr/bin/env python3
"""attention_schedule_model.py — how evenly the sm90 forward's persistent blocks
finish on the attention benchmark's packed rows, for three ways of claiming
items. A model, run on the CPU: it is what the comment on the claim in
llmc/attention_sm90.cuh quotes.

The packed lengths are the benchmark's (attn_benchmark_lengths in
dev/cuda/attention_check.h: log-normal documents packed in stream order into
rows of T tokens, seed 20261125 + shape index; splitmix64 and Box-Muller as in
llmc/rand.h). The forward's items are (128-row query tile of a document,
head), head-major, heaviest first within a head (the tile table's order),
except the last K heads (ATTN_SM90_TAIL_UNITS, 4), whose items are merged:
entry 0 of each, then entry 1 of each, ...; an item weighs its kv tiles
plus one (its start and epilogue). Blocks take item
b first, then claim items from one counter; a block claims
  after-next  at an item's start, the item after its next (the forward
              before 2026-12-02, eighth session),
  next        at an item's start, its next item (the forward since),
  at-end      when an item ends, its next item (a greedy list schedule).
Printed per shape: the last block's finish over an even split of the work
(1.000 = all blocks finish together) and the blocks' mean busy share.

usage: attention_schedule_model.py [--blocks B] [--tail K] [--lengths T]
  --blocks B   persistent blocks (default 132: one per SM of an H200)
  --tail K     heads merged at the end of the order (default 4, the kernel's;
               1: head-major to the end, the forward before 2026-12-02, ninth session)
  --lengths T  print the first 12 packed lengths of shape T and exit
"""
import heapq
import math
import sys

SHAPES = [(1024, 12), (2048, 16), (8192, 32)]  # (T, query heads) of the packed benchmark shapes
TOKENS, LENGTH_SEED, TILE_ROWS = 32768, 20261125, 128
MASK = (1 << 64) - 1


def splitmix_stream(seed):
    state = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def normals(seed):
    bits = splitmix_stream(seed)
    while True:
        u1 = max((next(bits) >> 11) / 9007199254740992.0, 1e-300)
        u2 = (next(bits) >> 11) / 9007199254740992.0
        yield math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def packed_lengths(T, shape_index):
    normal, lengths, row_left, doc_left, n = normals(LENGTH_SEED + shape_index), [], T, 0, 0
    while n < TOKENS:
        if doc_left == 0:
            doc_left = max(1, math.floor(math.exp(5.99 + 0.985 * next(normal)) + 0.5))  # lround
        piece = min(doc_left, row_left)
        lengths.append(piece)
        doc_left, row_left, n = doc_left - piece, row_left - piece, n + piece
        if row_left == 0:
            row_left, doc_left = T, 0
    return lengths


def forward_items(lengths, heads, tail):
    per_head = sorted((i + 2 for L in lengths for i in range(-(-L // TILE_ROWS))), reverse=True)
    tail = min(tail, heads)
    return per_head * (heads - tail) + [w for w in per_head for _ in range(tail)]


def finish(items, blocks, policy):
    """(last finish / even split, mean busy share) of `blocks` walking `items` in claim order."""
    blocks = min(blocks, len(items))
    queue = [[b] for b in range(blocks)]
    claimed = blocks
    if policy == "after-next":  # block b also holds b + blocks before it starts
        for b in range(blocks):
            if claimed < len(items):
                queue[b].append(claimed)
                claimed += 1
    ready, done = [(0.0, b) for b in range(blocks)], [0.0] * blocks
    while ready:
        t, b = heapq.heappop(ready)
        if policy == "at-end" and not queue[b] and claimed < len(items):
            queue[b].append(claimed)
            claimed += 1
        if not queue[b]:
            done[b] = t
            continue
        item = queue[b].pop(0)
        if policy != "at-end" and claimed < len(items):
            queue[b].append(claimed)
            claimed += 1
        heapq.heappush(ready, (t + items[item], b))
    even = sum(items) / blocks
    return max(done) / even, sum(items) / blocks / max(done)


def main(argv):
    blocks, tail, i = 132, 4, 1
    while i < len(argv):
        if argv[i] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if argv[i] in ("--blocks", "--tail", "--lengths") and i + 1 < len(argv) and argv[i + 1].isdigit():
            value = int(argv[i + 1])
            if argv[i] == "--lengths":
                shape = [k for k, (T, _) in enumerate(SHAPES) if T == value]
                if not shape:
                    sys.exit(f"error: --lengths takes one of {[T for T, _ in SHAPES]}, not {value}")
                print(" ".join(map(str, packed_lengths(value, shape[0])[:12])))
                return 0
            if value < 1:
                sys.exit(f"error: {argv[i]} takes a positive count")
            if argv[i] == "--tail":
                tail = value
            else:
                blocks = value
            i += 2
            continue
        sys.exit(f"error: unknown or incomplete argument '{argv[i]}' (see --help)")
    print(f"sm90 forward schedule model: {blocks} blocks, the last {tail} heads merged; "
          "last finish / even split (mean busy share)")
    for k, (T, heads) in enumerate(SHAPES):
        items = forward_items(packed_lengths(T, k), heads, tail)
        cells = ["%s %.3f (%.3f)" % ((p,) + finish(items, blocks, p)) for p in ("after-next", "next", "at-end")]
        print(f"T={T} NH={heads}: {len(items)} items; " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
