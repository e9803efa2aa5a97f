"""
bench_peer.py -- the PyTorch peer that train_gpt is measured against, as
strong as stock PyTorch makes it: the whole model.py forward including the
loss under torch.compile, bf16 autocast over fp32 weights, fused AdamW
(weight decay on the matrices only), foreach gradient clipping, the tied
head (gpt2, llama:1B), FlexAttention with a document block mask and
per-document positions, trained on packed micro-batches.

    python dev/reference/bench_peer.py --workload gpt2-b32 --batches dump.bin [--steps 50 --warmup 5]
    python dev/reference/bench_peer.py --workload llama1b --shards "DIR/synth_train_*.bin"

The micro-batches are either the very ones train_gpt used (its
--dump-batches file) or, with --shards, packed here the way train_gpt's
`--packing chunk` packs (consecutive T+1 windows, a segment starts at every
row start and at every end-of-text token). Each step is one micro-batch.
The micro-batches are copied to the GPU and their block masks built before
the timed steps (train_gpt's timed step also loads and uploads its batches,
so this favours the peer). Steps after --warmup (compilation) are timed one
by one with a device synchronisation; the tokens/s is the median over the
steps that start after --warm-seconds of those (the card then runs at the
clock it keeps under load, as in dev/median_step.sh for train_gpt). For
comparison with earlier versions of this script, the same steps are then
timed again with the mask built and the batch copied inside the timed step
(the old setting):

    VARIANT <workload> mask_in_step tok/s <median>
    RESULT <workload> tok/s <median tokens per second> peak_mib <max allocated> reserved_mib <max reserved>
"""
import argparse
import faulthandler
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
    ap.add_argument("--steps", type=int, default=50, help="steps after the warm-up")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    ap.add_argument("--warm-seconds", type=float, default=2.0,
                    help="seconds of steps after --warmup that are not timed either (the card's clock settles)")
    ap.add_argument("--stall-report", type=float, default=60.0, metavar="S",
                    help="until the warm-up is over, print every thread's Python stack to stderr each S seconds "
                         "(shows where a long compilation is; 0: off)")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.warm_seconds < 0:
        sys.exit("bench_peer: --steps must be at least 1, --warmup and --warm-seconds at least 0")
    if not torch.cuda.is_available():
        sys.exit("bench_peer: needs a CUDA GPU")

    started = time.perf_counter()
    if args.stall_report > 0:
        faulthandler.dump_traceback_later(args.stall_report, repeat=True)
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
    parameters = list(model.parameters())

    def host_batches(count):
        """The first `count` micro-batches (a dump is replayed as often as needed)."""
        out = []
        while len(out) < count:
            source = read_batch_dump(args.batches) if args.batches else chunk_batches(args.shards, B, T)
            for m in source:
                if (m["B"], m["T"]) != (B, T):
                    sys.exit(f"bench_peer: batch has B={m['B']} T={m['T']}, workload {args.workload} wants {B}, {T}")
                out.append(m)
                if len(out) == count:
                    break
        return out

    def upload(m):
        """(inputs, pos, targets, mask, number of targets) of a host micro-batch, on the GPU."""
        as_cuda = lambda a: torch.from_numpy(np.asarray(a, np.int64)).cuda(non_blocking=True)  # noqa: E731
        inputs, targets, pos, cu = (as_cuda(m[k]) for k in ("inputs", "targets", "pos", "cu_seqlens"))
        return inputs, pos, targets, segment_mask(cu, B * T), (targets != -1).sum()

    def step(inputs, pos, targets, mask, count):
        with torch.autocast("cuda", torch.bfloat16):
            loss_sum = compiled(inputs, pos, targets, mask)
        loss = loss_sum / count
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def timed_steps(label, prepared, inside_step):
        """Median tokens/s over the steps after the warm-up steps and --warm-seconds of steps after them;
        inside_step: upload + mask in the timed step."""
        times, warmed = [], 0.0
        for i, m in enumerate(prepared):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = step(*(upload(m) if inside_step else m))
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            timed = i >= args.warmup and warmed >= args.warm_seconds
            if timed:
                times.append(dt)
            elif i >= args.warmup:
                warmed += dt
            if i + 1 >= args.warmup:
                faulthandler.cancel_dump_traceback_later()
            print(f"{label} step {i:3d} loss {loss.item():.4f} {dt * 1e3:8.1f} ms {B * T / dt:10.0f} tok/s"
                  f"{'' if timed else ' (warmup)'}", flush=True)
        if len(times) < 5:
            sys.exit(f"bench_peer: only {len(times)} steps after {args.warm_seconds} s of warm-up steps: "
                     "raise --steps")
        return B * T / statistics.median(times)

    host = host_batches(args.warmup + args.steps)
    prepared = [upload(m) for m in host]
    # the first step compiles the model (minutes for llama:1B): say so, so a run cut short shows where it was
    print(f"bench_peer: {len(host)} micro-batches ready after {time.perf_counter() - started:.0f} s; "
          "step 0 compiles the model", flush=True)
    tok_s = timed_steps("prepared", prepared, inside_step=False)
    old_tok_s = timed_steps("mask_in_step", host, inside_step=True)
    mib = 1 << 20
    print(f"VARIANT {args.workload} mask_in_step tok/s {old_tok_s:.0f}")
    print(f"RESULT {args.workload} tok/s {tok_s:.0f} peak_mib {torch.cuda.max_memory_allocated() / mib:.0f} "
          f"reserved_mib {torch.cuda.max_memory_reserved() / mib:.0f}")


if __name__ == "__main__":
    main()
