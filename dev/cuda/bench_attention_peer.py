#!/usr/bin/env python3
"""bench_attention_peer.py — times PyTorch's document-masked attention on the
same packed inputs as our kernel and prints the comparison table.

Reads the report written by `attention_backward --report FILE`: for each
shape its (T, NH, HD, N, S), the packed segment lengths and, per kernel path
of ours (sm90, sm80), our forward, backward and forward+backward medians.
Times on the same lengths, q/k/v of shape (N, NH, HD) bf16:
  flex    torch.compile(flex_attention) with a block mask "same document and
          causal" (block mask built once, outside the timing),
  varlen  torch.nn.attention.varlen.varlen_attn, causal,
  sdpa    dense causal scaled_dot_product_attention over whole rows of T
          tokens: no document mask, so not the same work unless every
          segment is a whole row (the "causal" shape, where it is). Timed
          with each backend that takes the inputs (sdpa-flash, sdpa-cudnn,
          sdpa-effic); the comparison line uses the fastest.
TFLOP/s count attended pairs only: 4*HD*NH*sum L(L+1)/2 forward (for sdpa
its own pairs, N/T * T(T+1)/2 per head), 2.5x that backward. Medians of 20
rounds after 4 s of untimed ones (the card then runs as it does under
sustained load); a round calls forward, backward and forward+backward twice each
and times the second call (CUDA events), as our benchmark does. The MHz
and W columns are the mean SM clock and power over the timed rounds and the
warm-up's last second (NVML; "-": unknown), ours as the report gives them: a kernel that draws the card's
power cap runs at the clock the cap leaves.

usage: bench_attention_peer.py REPORT
"""
import ctypes
import inspect
import sys
import threading
import time

WARM_SECONDS = 4.0  # as ATTN_BENCH_WARM_SECONDS in dev/cuda/attention_check.h


def read_report(path):
    """Shapes of a report; exits with a message naming the file on bad input."""
    shapes, cur = [], None
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        sys.exit(f"error: cannot read report '{path}': {e.strerror}")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, *vals = line.split()
        try:
            if key == "shape":
                T, NH, HD, N, S = map(int, vals)
                cur = dict(T=T, NH=NH, HD=HD, N=N, S=S)
                shapes.append(cur)
            elif key == "lengths" and cur is not None:
                cur["lengths"] = list(map(int, vals))
            elif key == "ours" and cur is not None:
                if len(vals) != 6:
                    raise ValueError("'ours' needs a path, 3 timings, the SM clock and the power")
                cur.setdefault("ours", {})[vals[0]] = (tuple(map(float, vals[1:4])), tuple(map(float, vals[4:6])))
            else:
                raise ValueError(f"unexpected line starting with '{key}'")
        except ValueError as e:
            sys.exit(f"error: {path}:{lineno}: {e}")
    for s in shapes:
        if "lengths" not in s or "ours" not in s or sum(s["lengths"]) != s["N"] or min(s["lengths"]) < 1:
            sys.exit(f"error: {path}: shape T={s['T']} is incomplete or its lengths do not sum to N")
    if not shapes:
        sys.exit(f"error: {path}: no shapes")
    return shapes


class CardSampler:
    """The card's mean SM clock in MHz over a stretch of time, read through NVML (the driver's library,
    opened with ctypes) every 5 ms on a thread, and its mean power in W from NVML's energy counter, as
    test/card_sampler.h does for ours; 0 when unknown."""

    def __init__(self, bus_id):
        """bus_id: the card's PCI address as NVML takes it ("" when unknown: no readings)."""
        self.read = self.read_mj = None
        if not bus_id:
            return
        try:
            nvml = ctypes.CDLL("libnvidia-ml.so.1")
            device = ctypes.c_void_p()
            if nvml.nvmlInit_v2() == 0 and nvml.nvmlDeviceGetHandleByPciBusId_v2(
                    bus_id.encode(), ctypes.byref(device)) == 0:
                mhz, mj = ctypes.c_uint(), ctypes.c_ulonglong()

                def read():
                    ok = nvml.nvmlDeviceGetClockInfo(device, 1, ctypes.byref(mhz)) == 0  # 1: NVML_CLOCK_SM
                    return mhz.value if ok else 0

                def read_mj():
                    ok = nvml.nvmlDeviceGetTotalEnergyConsumption(device, ctypes.byref(mj)) == 0
                    return mj.value if ok else 0
                self.read, self.read_mj = read, read_mj
        except OSError:
            pass

    def mean_during(self, work):
        """Runs work() while sampling; returns the mean clock in MHz and power in W (0: unknown)."""
        samples, done = [], threading.Event()
        start_mj, start_s = self.read_mj() if self.read_mj else 0, time.monotonic()

        def sample():
            while not done.wait(0.005):
                mhz = self.read() if self.read else 0
                if mhz:
                    samples.append(mhz)
        thread = threading.Thread(target=sample)
        thread.start()
        try:
            work()
        finally:
            stop_mj, stop_s = self.read_mj() if self.read_mj else 0, time.monotonic()
            done.set()
            thread.join()
        watts = (stop_mj - start_mj) * 1e-3 / (stop_s - start_s) if start_mj and stop_mj > start_mj else 0.0
        return (sum(samples) / len(samples) if samples else 0.0), watts


def medians_ms(fns, card, warmup=3, reps=20):
    """Median ms of each fn over `reps` rounds and the mean (SM clock, power) over them and the warm-up's
    last second (as test/gpu_check.h samples ours); a round calls every fn twice
    in a row, in order, and times the second call, so all of them run under the same clock, Python's
    launch time hides behind the first call's GPU work (as in a training step), and each timed call
    follows a call of itself (as time_ms_interleaved in test/gpu_check.h does for ours). Before them,
    `warmup` untimed rounds and more until WARM_SECONDS have passed."""
    import torch
    warm_until = time.monotonic() + WARM_SECONDS
    rounds = 0

    def warm_rounds(until):
        nonlocal rounds
        while rounds < warmup or time.monotonic() < until:
            for fn in fns:
                fn()
            torch.cuda.synchronize()
            rounds += 1
    warm_rounds(warm_until - 1.0)
    times = [[] for _ in fns]

    def sampled():  # the last second of the warm-up, then the timed rounds (the energy counter's steps are coarse)
        warm_rounds(warm_until)
        for _ in range(reps):
            for fn, t in zip(fns, times):
                fn()
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                t.append(start.elapsed_time(stop))
    reading = card.mean_during(sampled)
    return [sorted(t)[reps // 2] for t in times], reading


def time_impl(attn, q, k, v, dout, card):
    """(fwd, bwd, fwd+bwd medians in ms, (mean SM clock, power)) of attn(q, k, v) -> (N, NH, HD)."""
    import torch

    def fwd():
        return attn(q, k, v)

    out = fwd()
    ms, reading = medians_ms([fwd,
                              lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True),
                              lambda: torch.autograd.grad(fwd(), (q, k, v), dout)], card)
    return tuple(ms), reading


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 1)
    shapes = read_report(sys.argv[1])
    import torch  # imported here so --help and report errors need no torch
    import torch.nn.functional as F
    import torch.nn.attention.varlen as varlen
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    params = inspect.signature(varlen.varlen_attn).parameters
    print(f"varlen_attn{inspect.signature(varlen.varlen_attn)}")
    causal_kw = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    from torch.nn.attention import SDPBackend, sdpa_kernel
    sdpa_backends = [("sdpa-flash", SDPBackend.FLASH_ATTENTION), ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION),
                     ("sdpa-effic", SDPBackend.EFFICIENT_ATTENTION)]
    flex = torch.compile(flex_attention, dynamic=False)
    dev = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    props = torch.cuda.get_device_properties(0)
    pci = [getattr(props, f"pci_{part}_id", None) for part in ("domain", "bus", "device")]
    card_sampler = CardSampler("%x:%x:%x.0" % tuple(pci) if None not in pci else "")
    rows = []
    for s in shapes:
        N, NH, HD = s["N"], s["NH"], s["HD"]
        lengths = torch.tensor(s["lengths"], dtype=torch.int32, device=dev)
        cu = torch.zeros(len(s["lengths"]) + 1, dtype=torch.int32, device=dev)
        cu[1:] = torch.cumsum(lengths, 0)
        max_len = max(s["lengths"])
        doc = torch.repeat_interleave(torch.arange(len(s["lengths"]), device=dev), lengths.long())
        pairs = sum(L * (L + 1) // 2 for L in s["lengths"])
        flops = 4.0 * HD * NH * pairs

        def doc_causal(b, h, q_idx, kv_idx):
            return (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)

        block_mask = create_block_mask(doc_causal, None, None, N, N, device=dev)
        gen = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(N, NH, HD, device=dev, dtype=torch.bfloat16, generator=gen).requires_grad_()
                   for _ in range(3))
        dout = torch.randn(N, NH, HD, device=dev, dtype=torch.bfloat16, generator=gen)

        def flex_attn(q, k, v):
            o = flex(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                     block_mask=block_mask)
            return o[0].transpose(0, 1)

        def varlen_attn(q, k, v):
            return varlen.varlen_attn(q, k, v, cu, cu, max_len, max_len, **causal_kw)

        T = s["T"]
        dense_flops = 4.0 * HD * NH * (N // T) * T * (T + 1) / 2

        def sdpa_attn(q, k, v):
            rows_of = [x.view(N // T, T, NH, HD).transpose(1, 2) for x in (q, k, v)]
            return F.scaled_dot_product_attention(*rows_of, is_causal=True).transpose(1, 2).reshape(N, NH, HD)

        causal = all(L == T for L in s["lengths"])
        label = f"T={T} NH={NH} HD={HD}" + (" causal" if causal else "")
        results = {f"ours {path}": (flops, t, reading) for path, (t, reading) in sorted(s["ours"].items(), reverse=True)}
        results["flex"] = (flops, *time_impl(flex_attn, q, k, v, dout, card_sampler))
        results["varlen"] = (flops, *time_impl(varlen_attn, q, k, v, dout, card_sampler))
        if N % T == 0:
            for name, backend in sdpa_backends:
                try:
                    with sdpa_kernel(backend):
                        results[name] = (dense_flops, *time_impl(sdpa_attn, q, k, v, dout, card_sampler))
                except RuntimeError as e:  # the backend does not take these inputs on this card
                    print(f"{label}: {name} not run: {str(e).splitlines()[0][:100]}")
        rows.append((label, causal, results))

    print(f"\nattention on {card}: {shapes[0]['N']} tokens per call, log-normal documents packed in rows of T"
          " ('causal': one segment per row); medians; TFLOP/s over attended pairs (sdpa: dense causal over"
          " whole rows, no document mask); MHz, W: mean SM clock and power of the timed rounds"
          " and the warm-up's last second")
    print(f"{'shape':<29} {'impl':<11} {'fwd ms':>8} {'fwd TF':>7} {'bwd ms':>8} {'bwd TF':>7} {'f+b ms':>8} "
          f"{'f+b TF':>7} {'MHz':>5} {'W':>4}")
    for label, causal, results in rows:
        for name, (flops, (f, b, fb), (mhz, watts)) in results.items():
            print(f"{label:<29} {name:<11} {f:8.3f} {flops / f * 1e-9:7.1f} {b:8.3f} {2.5 * flops / b * 1e-9:7.1f} "
                  f"{fb:8.3f} {3.5 * flops / fb * 1e-9:7.1f} {f'{mhz:.0f}' if mhz else '-':>5} "
                  f"{f'{watts:.0f}' if watts else '-':>4}")
        ours_name = min((t[2], name) for name, (_, t, _) in results.items() if name.startswith("ours"))[1]
        peer_name = min(("flex", "varlen"), key=lambda name: results[name][1][2])
        ours, best_peer = results[ours_name][1][2], results[peer_name][1][2]
        print(f"{label:<29} ours (faster path) fwd+bwd vs faster of varlen/flex: {best_peer / ours:.2f}x")
        # energy per fwd+bwd call: its time times the mean power of the rounds (which also ran fwd and bwd
        # alone, so it is the rounds' mean, not the f+b call's own)
        ours_watts, peer_watts = results[ours_name][2][1], results[peer_name][2][1]
        if ours_watts and peer_watts:
            print(f"{label:<29} the same per joule ({ours_name} at {ours_watts:.0f} W, {peer_name} at "
                  f"{peer_watts:.0f} W): {best_peer * peer_watts / (ours * ours_watts):.2f}x")
        sdpa = [(t[2], name) for name, (_, t, _) in results.items() if name.startswith("sdpa")]
        if causal and sdpa:
            fastest, name = min(sdpa)
            print(f"{label:<29} ours (faster path) fwd+bwd vs dense causal sdpa ({name}, its fastest backend), "
                  f"same work: {fastest / ours:.2f}x")


if __name__ == "__main__":
    main()
