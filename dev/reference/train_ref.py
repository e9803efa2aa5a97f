"""
train_ref.py -- the PyTorch reference trainer: replays the micro-batches
that `train_gpt --dump-batches FILE` wrote, through model.py, with the same
init, AdamW, learning-rate schedule and clipping as train_gpt, and writes
main.log in the same line format (s:STEP trl:LOSS lr:LR norm:NORM).

One optimizer step = `accum` micro-batches, accum = -d / (B*T) as in
train_gpt. The loss of a step is the sum of -log p(target) over every
target != -1 of those micro-batches, divided by their count; its gradient
is what AdamW sees after global-norm clipping:

    scale = clip / norm if norm > clip else 1          (norm before clipping)
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2        (g = scale * grad)
    p -= lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd * p)
    with wd only on the matrices wte wpe qkvw attprojw fcw fcprojw lm_head.

--dump-grads writes the first step's gradient (fp32, params.h order, before
clipping); --compare-grads checks it, tensor by tensor, against a gradient
file of train_gpt (fp32 or bf16, same order) by norm-relative error.

    python dev/reference/train_ref.py -e gpt2:d12 --batches batches.bin -d 8192 -x 200 -o out/ref
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import (MATRIX_PARAMS, PackLM, _bf16_to_f32, init_params, load_checkpoint,  # noqa: E402
                   parse_descriptor, read_batch_dump, segment_mask)

WSD_DECAY_FRACTION = 0.2


def lr_at(step, kind, lr, warmup, total, final_frac):
    """llmc/schedulers.h lr_at (0-based step), in float32 like the C code."""
    f32 = np.float32
    if step < warmup:
        return float(f32(lr) * f32(step + 1) / f32(warmup))
    lr64, min_lr = float(f32(lr)), float(f32(lr)) * float(f32(final_frac))
    last = total - 1

    def progress(frm, to):
        if to <= frm:
            return 1.0 if step >= frm else 0.0
        return min(1.0, max(0.0, (step - frm) / (to - frm)))

    if kind == "cosine":
        return float(f32(min_lr + (lr64 - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress(warmup, last)))))
    if kind == "linear":
        return float(f32(lr64 - (lr64 - min_lr) * progress(warmup, last)))
    if kind == "wsd":
        decay_start = max(total - math.ceil(WSD_DECAY_FRACTION * total), warmup)
        return float(f32(lr64 - (lr64 - min_lr) * progress(decay_start, last)))
    if kind == "constant":
        return float(f32(lr))
    raise ValueError(f"unknown schedule '{kind}' (known: cosine linear constant wsd)")


def adamw_step(model, state, t, lr, scale, args):
    """One decoupled-weight-decay AdamW update of every tensor (t is 1-based)."""
    with torch.no_grad():
        for name, p in model.params.items():
            g = p.grad * scale
            if name not in state:
                state[name] = (torch.zeros_like(p), torch.zeros_like(p))
            m, v = state[name]
            m.mul_(args.beta1).add_(g, alpha=1 - args.beta1)
            v.mul_(args.beta2).addcmul_(g, g, value=1 - args.beta2)
            m_hat = m / (1 - args.beta1 ** t)
            v_hat = v / (1 - args.beta2 ** t)
            wd = args.weight_decay if name in MATRIX_PARAMS else 0.0
            p.sub_(lr * (m_hat / (v_hat.sqrt() + args.eps) + wd * p))


def compare_grads(model, path, bound):
    """Per-tensor ||ours - ref|| / ||ref|| against train_gpt's gradient file; True if all within bound."""
    ref = model.flat_grads().double().cpu().numpy()
    raw = np.fromfile(path, np.uint8)
    if raw.size == 4 * ref.size:
        ours = raw.view(np.float32).astype(np.float64)
    elif raw.size == 2 * ref.size:
        ours = _bf16_to_f32(raw.view(np.uint16)).astype(np.float64)
    else:
        raise ValueError(f"{path}: {raw.size} bytes is neither fp32 nor bf16 of {ref.size} parameters")
    ok, at = True, 0
    print(f"{'tensor':10s} {'|ref|':>12s} {'rel err':>10s}  (bound {bound:g})")
    for name, p in model.ordered():
        n = p.numel()
        a, b = ours[at:at + n], ref[at:at + n]
        at += n
        err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
        good = bool(np.isfinite(a).all()) and err <= bound
        ok &= good
        print(f"{name:10s} {np.linalg.norm(b):12.4e} {err:10.3e}  {'ok' if good else 'OVER'}")
    return ok


def round_to_bf16(a):
    """fp32 -> nearest bf16 (ties to even), kept as fp32: train_gpt's weights after init."""
    bits = a.view(np.uint32)
    return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)).view(np.float32)


def build_model(args, device):
    """The weights to start from: a model file, or the seeded init, rounded to bf16 as
    train_gpt starts (--init bf16) or kept fp32 as train_cpu starts (--init fp32)."""
    if os.path.isfile(args.model):
        cfg, arrays = load_checkpoint(args.model)
    else:
        cfg = parse_descriptor(args.model)
        arrays = init_params(cfg, args.seed)
        if args.init == "bf16":
            arrays = {name: round_to_bf16(a) for name, a in arrays.items()}
    model = PackLM(cfg).to(device)
    model.load(arrays)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", dest="model", default="gpt2:d12", help="descriptor or model checkpoint file")
    ap.add_argument("--batches", required=True, help="batch dump of train_gpt --dump-batches")
    ap.add_argument("-d", dest="total_batch_tokens", type=int, default=65536, help="tokens per optimizer step")
    ap.add_argument("-x", dest="steps", type=int, default=10)
    ap.add_argument("-l", dest="lr", type=float, default=6e-4)
    ap.add_argument("-u", dest="warmup", type=int, default=50)
    ap.add_argument("-q", dest="final_lr_frac", type=float, default=0.1)
    ap.add_argument("-k", dest="schedule", default="cosine")
    ap.add_argument("-c", dest="weight_decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1337, help="init seed (as train_gpt --seed)")
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--init", choices=["bf16", "fp32"], default="bf16",
                    help="seeded init rounded to bf16 (as train_gpt) or fp32 (as train_cpu)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast matmuls")
    ap.add_argument("--attention", choices=["flex", "varlen", "dense"], default="flex",
                    help="flex: FlexAttention (compiled); varlen: varlen_attn (bf16 only); dense: SDPA, N^2 mask")
    ap.add_argument("-o", dest="output_dir", help="writes OUTPUT_DIR/main.log")
    ap.add_argument("--dump-grads", help="write step 0's gradient here (fp32, params.h order)")
    ap.add_argument("--compare-grads", help="train_gpt's step-0 gradient file to check against")
    ap.add_argument("--grad-bound", type=float, default=5e-2, help="norm-relative bound per tensor")
    args = ap.parse_args()
    if args.attention == "varlen" and args.dtype != "bf16":
        ap.error("--attention varlen runs bf16 only (flash attention): add --dtype bf16")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    model = build_model(args, device)
    batches = read_batch_dump(args.batches)
    log = None
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        log = open(os.path.join(args.output_dir, "main.log"), "w")
    state, grads_ok = {}, True
    for step in range(args.steps):
        micro = []
        try:
            micro.append(next(batches))
            accum, rem = divmod(args.total_batch_tokens, micro[0]["B"] * micro[0]["T"])
            if accum < 1 or rem:
                sys.exit(f"-d {args.total_batch_tokens} is not a multiple of B*T={micro[0]['B'] * micro[0]['T']}")
            micro += [next(batches) for _ in range(accum - 1)]
        except StopIteration:
            sys.exit(f"{args.batches}: ran out of micro-batches at step {step} (asked for {args.steps} steps)")
        started = time.perf_counter()
        count = sum(int((m["targets"] != -1).sum()) for m in micro)
        loss = 0.0
        for m in micro:
            as_long = lambda a: torch.from_numpy(a.astype(np.int64)).to(device)  # noqa: E731
            inputs, targets, pos = as_long(m["inputs"]), as_long(m["targets"]), as_long(m["pos"])
            mask = segment_mask(as_long(m["cu_seqlens"]), inputs.numel(), args.attention)
            with torch.autocast(device, torch.bfloat16, enabled=args.dtype == "bf16"):
                loss_sum = model(inputs, pos, targets, mask)
            (loss_sum / count).backward()
            loss += loss_sum.item() / count
        norm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.params.values()))
        if step == 0 and args.dump_grads:
            model.flat_grads().float().cpu().numpy().tofile(args.dump_grads)
        if step == 0 and args.compare_grads:
            grads_ok = compare_grads(model, args.compare_grads, args.grad_bound)
        lr = lr_at(step, args.schedule, args.lr, args.warmup, args.steps, args.final_lr_frac)
        scale = args.grad_clip / norm if args.grad_clip > 0 and norm > args.grad_clip else 1.0
        adamw_step(model, state, step + 1, lr, scale, args)
        model.zero_grad(set_to_none=False)
        print(f"step {step + 1:5d}/{args.steps} | loss {loss:.6f} | lr {lr:.3e} | norm {norm:.4f} | "
              f"{(time.perf_counter() - started) * 1e3:.0f} ms", flush=True)
        if log:
            log.write(f"s:{step} trl:{loss:f} lr:{lr:f} norm:{norm:f}\n")  # 0-based, as train_gpt
            log.flush()
    if not grads_ok:
        sys.exit("gradient check FAILED: some tensor is over the bound")


if __name__ == "__main__":
    main()
