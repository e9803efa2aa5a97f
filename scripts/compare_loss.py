"""
compare_loss.py -- plot main.log loss curves (llm.c format: "s:STEP trl:LOSS ..."
and "s:STEP tel:VAL_LOSS") and their difference from the first log.

    python3 scripts/compare_loss.py A/main.log B/main.log [C/main.log ...] \
        --labels ours,reference --png curves.png \
        [--max-mean-diff 0.01] [--max-step0-rel 1e-3] [--max-trend 0.01]

Prints, for every log after the first, the mean |train loss difference| over
the steps both logs have, the step-0 relative difference, the difference's
growth over the run (least-squares slope of |diff| times the step span: a
positive value that keeps growing is a divergence trend) and the val-loss
difference at the last common val step. With the --max-* options each
number is checked: "PASS name" / "FAIL name: why" lines, exit status 1 on
any failure.
"""
import argparse
import os
import re
import sys

LINE = re.compile(r"^s:(\d+) (trl|tel):(\S+)")


def read_log(path):
    """-> ({step: train loss}, {step: val loss}); a line that is not a loss line is skipped."""
    train, val = {}, {}
    try:
        with open(path) as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    (train if m.group(2) == "trl" else val)[int(m.group(1))] = float(m.group(3))
    except OSError as e:
        sys.exit(f"compare_loss: cannot read {path}: {e.strerror}")
    if not train:
        sys.exit(f"compare_loss: {path}: no 's:STEP trl:LOSS' lines")
    return train, val


def compare(base, other):
    """Statistics of other's train/val losses minus base's over their common steps."""
    steps = sorted(set(base[0]) & set(other[0]))
    if not steps:
        return None
    diffs = [other[0][s] - base[0][s] for s in steps]
    absd = [abs(d) for d in diffs]
    n = len(steps)
    mean_step = sum(steps) / n
    var = sum((s - mean_step) ** 2 for s in steps)
    mean_abs = sum(absd) / n
    slope = sum((s - mean_step) * (a - mean_abs) for s, a in zip(steps, absd)) / var if var else 0.0
    val_steps = sorted(set(base[1]) & set(other[1]))
    last_val = val_steps[-1] if val_steps else None
    return {
        "steps": steps, "diffs": diffs, "mean_abs": mean_abs,
        "step0_rel": abs(diffs[0]) / abs(base[0][steps[0]]) if base[0][steps[0]] else float("inf"),
        "trend": slope * (steps[-1] - steps[0]),
        "val_step": last_val,
        "val_diff": other[1][last_val] - base[1][last_val] if last_val is not None else None,
    }


def plot(logs, labels, stats, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for (train, val), label in zip(logs, labels):
        steps = sorted(train)
        line, = top.plot(steps, [train[s] for s in steps], lw=1, label=f"{label} train")
        if val:
            vs = sorted(val)
            top.plot(vs, [val[s] for s in vs], "o--", ms=3, color=line.get_color(), label=f"{label} val")
    top.set_ylabel("loss")
    top.legend()
    top.grid(alpha=0.3)
    for s, label in zip(stats, labels[1:]):
        if s:
            bottom.plot(s["steps"], s["diffs"], lw=1, label=f"{label} - {labels[0]} (mean |d| {s['mean_abs']:.4f})")
    bottom.axhline(0, color="k", lw=0.5)
    bottom.set_xlabel("step")
    bottom.set_ylabel("train loss difference")
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", help="main.log files; differences are taken against the first")
    ap.add_argument("--labels", help="comma-separated names, one per log (default: the paths)")
    ap.add_argument("--png", help="write the plot here")
    ap.add_argument("--max-mean-diff", type=float, help="check: mean |train loss difference| <= this")
    ap.add_argument("--max-step0-rel", type=float, help="check: |first-step difference| / loss <= this")
    ap.add_argument("--max-trend", type=float, help="check: growth of |difference| over the run <= this")
    args = ap.parse_args()
    labels = args.labels.split(",") if args.labels else [os.path.dirname(p) or p for p in args.logs]
    if len(labels) != len(args.logs):
        sys.exit(f"compare_loss: {len(labels)} labels for {len(args.logs)} logs")
    logs = [read_log(p) for p in args.logs]
    stats = [compare(logs[0], other) for other in logs[1:]]
    failed = 0
    for s, label in zip(stats, labels[1:]):
        if s is None:
            print(f"FAIL {label}: no step in common with {labels[0]}")
            failed += 1
            continue
        val = f", val diff {s['val_diff']:+.4f} at step {s['val_step']}" if s["val_step"] is not None else ""
        print(f"{label} vs {labels[0]}: {len(s['steps'])} common steps, mean |diff| {s['mean_abs']:.5f}, "
              f"step-0 rel diff {s['step0_rel']:.2e}, trend {s['trend']:+.5f}{val}")
        checks = [("mean_diff", s["mean_abs"], args.max_mean_diff), ("step0_rel", s["step0_rel"], args.max_step0_rel),
                  ("trend", s["trend"], args.max_trend)]
        for name, value, bound in checks:
            if bound is None:
                continue
            if value <= bound:  # NaN fails
                print(f"PASS {label}_{name} ({value:.3g} <= {bound:g})")
            else:
                print(f"FAIL {label}_{name}: {value:.3g} > {bound:g}")
                failed += 1
    if args.png:
        plot(logs, labels, stats, args.png)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
