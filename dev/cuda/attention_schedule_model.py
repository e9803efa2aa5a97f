#!/usr/bin/env python3
"""attention_schedule_model.py — how evenly the sm90 attention kernels' blocks
finish on the attention benchmark's packed rows: the forward's persistent
blocks for three ways of claiming items, or (--backward) the backward's grid
for three orders of its rows. A model, run on the CPU: it is what the
comments on the forward's claim and tail in llmc/attention_sm90.cuh quote.

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
(1.000 = all blocks finish together) and the blocks' mean busy share; and
the items whose second consumer warpgroup has no row (a document's last tile
of 1-64 rows: the first warpgroup computes it alone, with no partner to
overlap its softmax), as a share of the items and of the warpgroups' kv steps.

--backward models the sm90 backward's one launch instead: its blocks (64-row
tiles) start in grid order, each on the first slot that frees (SMs x blocks
per SM: 3 at HD 64, 2 at HD 128), a greedy list schedule. A kv block (kv
tile t of a document of n tiles) visits n - t query tiles and issues 4
products per step for each of the G query heads it serves; a dq block (query
tile t) visits t + 1 kv tiles, 3 products per step; both add 4 for their
start and stores. Rows in three orders: kv-first (every kv row, then every
dq row: the kernel's), interleaved (kv head k, then its G dq rows, ...),
dq-first. Printed: the finish over an even split, for G = 1 and 4.

usage: attention_schedule_model.py [--blocks B] [--tail K] [--backward] [--lengths T]
  --blocks B   SMs (default 132, an H200's): persistent blocks of the forward
  --tail K     heads merged at the end of the order (default 4, the kernel's;
               1: head-major to the end, the forward before 2026-12-02, ninth session)
  --lengths T  print the first 12 packed lengths of shape T and exit
"""
import heapq
import math
import sys

SHAPES = [(1024, 12), (2048, 16), (8192, 32)]  # (T, query heads) of the packed benchmark shapes
HEAD_DIM = {1024: 64, 2048: 128, 8192: 128}
BWD_ROWS, BWD_BLOCKS_PER_SM = 64, {64: 3, 128: 2}  # the sm90 backward's tiles and occupancy
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


def lone_warpgroup_share(lengths):
    """(share of the forward's items, share of its warpgroup kv steps) where the second consumer
    warpgroup has no row: a document's last tile of 1-64 rows, which the first one computes alone."""
    items = lone = steps = lone_steps = 0
    for L in lengths:
        for t in range(-(-L // TILE_ROWS)):
            alone = L - t * TILE_ROWS <= TILE_ROWS // 2
            items, lone = items + 1, lone + alone
            steps, lone_steps = steps + 2 * (t + 1), lone_steps + alone * (t + 1)
    return lone / items, lone_steps / steps


def forward_items(lengths, heads, tail):
    per_head = sorted((i + 2 for L in lengths for i in range(-(-L // TILE_ROWS))), reverse=True)
    tail = min(tail, heads)
    return per_head * (heads - tail) + [w for w in per_head for _ in range(tail)]


def backward_blocks(lengths, heads, group, order):
    """The sm90 backward's blocks, weighed, in grid order."""
    tiles = [(n, t) for L in lengths for n in [-(-L // BWD_ROWS)] for t in range(n)]
    table = sorted(tiles, key=lambda tile: -tile[1])  # the dq work's heaviest first
    kv_row = [4 * group * (n - t) + 4 for n, t in reversed(table)]  # the kv blocks read it backwards
    dq_row = [3 * (t + 1) + 4 for n, t in table]
    kv_heads = heads // group
    rows = {"kv-first": [kv_row] * kv_heads + [dq_row] * heads,
            "interleaved": ([kv_row] + [dq_row] * group) * kv_heads,
            "dq-first": [dq_row] * heads + [kv_row] * kv_heads}[order]
    return [w for row in rows for w in row]


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
    blocks, tail, backward, i = 132, 4, False, 1
    while i < len(argv):
        if argv[i] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if argv[i] == "--backward":
            backward, i = True, i + 1
            continue
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
    if backward:
        print(f"sm90 backward schedule model: {blocks} SMs; last finish / even split")
        for k, (T, heads) in enumerate(SHAPES):
            slots = blocks * BWD_BLOCKS_PER_SM[HEAD_DIM[T]]
            for group in (1, 4):
                cells = []
                for order in ("kv-first", "interleaved", "dq-first"):
                    work = backward_blocks(packed_lengths(T, k), heads, group, order)
                    cells.append("%s %.3f" % (order, finish(work, slots, "at-end")[0]))
                print(f"T={T} NH={heads} G={group}: {len(work)} blocks on {slots} slots; " + "; ".join(cells))
        return 0
    print(f"sm90 forward schedule model: {blocks} blocks, the last {tail} heads merged; "
          "last finish / even split (mean busy share)")
    for k, (T, heads) in enumerate(SHAPES):
        items = forward_items(packed_lengths(T, k), heads, tail)
        cells = ["%s %.3f (%.3f)" % ((p,) + finish(items, blocks, p)) for p in ("after-next", "next", "at-end")]
        print(f"T={T} NH={heads}: {len(items)} items; " + "; ".join(cells))
        lone_items, lone_steps = lone_warpgroup_share(packed_lengths(T, k))
        print(f"  one warpgroup alone: {100 * lone_items:.1f}% of the items, {100 * lone_steps:.1f}% of the "
              "warpgroup kv steps idle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
