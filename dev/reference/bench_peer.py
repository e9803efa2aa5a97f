"""
bench_peer.py -- the PyTorch peer that train_gpt is measured against:
model.py under torch.compile, bf16 autocast over fp32 weights, fused AdamW
(weight decay on the matrices only), FlexAttention with a document block
mask and per-document positions, trained on packed micro-batches.

    python dev/reference/bench_peer.py --workload gpt2-b32 --batches dump.bin [--steps 20 --warmup 5]
    python dev/reference/bench_peer.py --workload llama1b --shards "DIR/synth_train_*.bin"

The micro-batches are either the very ones train_gpt used (its
--dump-batches file) or, with --shards, packed here the way train_gpt's
`--packing chunk` packs (consecutive T+1 windows, a segment starts at every
row start and at every end-of-text token). Each step is one micro-batch.
Steps after --warmup (compilation) are timed one by one with a device
synchronisation; the last line is

    RESULT <workload> tok/s <median tokens per second> peak_mib <max allocated> reserved_mib <max reserved>
"""
import argparse
import glob
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import MATRIX_PARAMS, NORM_WEIGHTS, PackLM, parse_descriptor, read_batch_dump, segment_mask  # noqa: E402

EOT = 50256
# name: (model descriptor, rows B, tokens per row T)
WORKLOADS = {
    "gpt2-b32": ("gpt2:d12", 32, 1024),
    "gpt2-b64": ("gpt2:d12", 64, 1024),
    "llama1b": ("llama:1B", 8, 2048),
}


def chunk_batches(pattern, B, T):
    """Endless micro-batches packed like train_gpt --packing chunk from llm.c shards."""
    paths = sorted(glob.glob(pattern))
    if not paths:
        sys.exit(f"bench_peer: no shard matches '{pattern}'")
    tokens = np.concatenate([np.fromfile(p, np.uint16, offset=1024).astype(np.int64) for p in paths])
    rows_per_pass = (tokens.size - 1) // T
    if rows_per_pass < B:
        sys.exit(f"bench_peer: '{pattern}' holds fewer than B={B} rows of T={T} tokens")
    row = 0
    while True:
        idx = (row + np.arange(B)) % rows_per_pass
        window = tokens[idx[:, None] * T + np.arange(T + 1)]  # (B, T+1): rows overlap by one token
        inputs, targets = window[:, :-1].reshape(-1), window[:, 1:].reshape(-1)
        starts = np.flatnonzero((inputs == EOT) | (np.arange(B * T) % T == 0))
        cu = np.append(starts, B * T)
        pos = np.arange(B * T) - np.repeat(starts, np.diff(cu))
        yield {"B": B, "T": T, "inputs": inputs, "targets": targets, "pos": pos, "cu_seqlens": cu}
        row += B


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--batches", help="train_gpt --dump-batches file (same B, T as the workload)")
    src.add_argument("--shards", help="glob of llm.c shards to pack here")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_peer: needs a CUDA GPU")

    descriptor, B, T = WORKLOADS[args.workload]
    cfg = parse_descriptor(descriptor)
    torch.manual_seed(0)
    model = PackLM(cfg).cuda()
    with torch.no_grad():  # GPT-2 style init drawn on the GPU (the speed does not depend on the values)
        for name, p in model.params.items():
            if name in MATRIX_PARAMS:
                p.normal_(0.0, 0.02)
            elif name in NORM_WEIGHTS:
                p.fill_(1.0)
    groups = [{"params": [p for n, p in model.params.items() if n in MATRIX_PARAMS], "weight_decay": 0.1},
              {"params": [p for n, p in model.params.items() if n not in MATRIX_PARAMS], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    compiled = torch.compile(model)

    def batches():
        while True:  # a dump is replayed as often as the steps need
            source = read_batch_dump(args.batches) if args.batches else chunk_batches(args.shards, B, T)
            for m in source:
                if (m["B"], m["T"]) != (B, T):
                    sys.exit(f"bench_peer: batch has B={m['B']} T={m['T']}, workload {args.workload} wants {B}, {T}")
                yield m

    def step(m):
        as_cuda = lambda a: torch.from_numpy(np.asarray(a, np.int64)).cuda(non_blocking=True)  # noqa: E731
        inputs, targets, pos, cu = (as_cuda(m[k]) for k in ("inputs", "targets", "pos", "cu_seqlens"))
        mask = segment_mask(cu, B * T)
        with torch.autocast("cuda", torch.bfloat16):
            loss_sum = compiled(inputs, pos, targets, mask)
        loss = loss_sum / (targets != -1).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    times, source = [], batches()
    for i in range(args.warmup + args.steps):
        m = next(source)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step(m)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
        print(f"step {i:3d} loss {loss.item():.4f} {dt * 1e3:8.1f} ms {B * T / dt:10.0f} tok/s"
              f"{'' if i >= args.warmup else ' (warmup)'}", flush=True)
    tok_s = B * T / statistics.median(times)
    mib = 1 << 20
    print(f"RESULT {args.workload} tok/s {tok_s:.0f} peak_mib {torch.cuda.max_memory_allocated() / mib:.0f} "
          f"reserved_mib {torch.cuda.max_memory_reserved() / mib:.0f}")


if __name__ == "__main__":
    main()
