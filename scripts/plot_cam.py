"""Draws `overlap-slam cam` results: per pair, the ground-truth overlap of each query column and
the attribution map under min-max, max and IVR normalisation, with each one's column IoU."""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def normalise(m, how, p):
    vals = sorted(v for v in m if v is not None and math.isfinite(v))
    lo, hi = vals[0], vals[-1]
    if how == "min-max":
        shift, scale = lo, hi - lo
    elif how == "max":
        shift, scale = 0.0, hi
    else:
        floor = vals[round(p * (len(vals) - 1))]
        shift, scale = floor, hi - floor
    out = []
    for v in m:
        if v is None or not math.isfinite(v):
            out.append(float("nan"))
        else:
            out.append(max((v - shift) / scale, 0.0) if scale > 0 else 0.0)
    return out


def main(cam_path, out_path, percentile=0.5):
    report = json.load(open(cam_path))
    pairs = report["pairs"]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(12, 2.2 * len(pairs)), sharex=True)
    colours = {"min-max": "tab:blue", "max": "tab:orange", "ivr": "tab:red"}
    for a, p in zip(axes, pairs):
        cols = range(len(p["column_overlap"]))
        truth = [v if v is not None else float("nan") for v in p["column_overlap"]]
        a.fill_between(cols, truth, color="0.85", label="ground-truth overlap of the column")
        raw = [v if v is not None else float("nan") for v in p["cam"]["query"]]
        for s in p["scores"]:
            name = "ivr" if isinstance(s["normalisation"], dict) else {"MinMax": "min-max", "Max": "max"}[s["normalisation"]]
            a.plot(cols, normalise(raw, name, percentile), color=colours[name], lw=0.9,
                   label=f"{name} (IoU {s['iou']:.2f}, lit {s['lit']:.2f})")
        a.set(ylim=(0, 1.05), ylabel="score")
        a.set_title(f"query {p['query']} vs reference {p['reference']}: overlap {p['overlap_truth']:.2f}", fontsize=9)
        a.legend(fontsize=7, loc="upper right", ncol=4)
    axes[-1].set_xlabel("image column (0-899; OverlapNet's features cover 90-810)")
    means = ", ".join(f"{n} {v:.3f}" for n, v in report["mean_iou"])
    fig.suptitle(f"{report['source']}: column IoU of lit (score >= 0.5) and shared columns; mean {means}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(x) for x in sys.argv[3:]))
