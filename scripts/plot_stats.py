"""Draws real vs simulated projection statistics (from `overlap-slam stats`) side by side."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(real_path, sim_path, out_path):
    real = json.load(open(real_path))
    sim = json.load(open(sim_path))
    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    series = [("real KITTI 00", real, "tab:blue"), ("simulated", sim, "tab:orange")]

    a = ax[0, 0]
    for name, s, c in series:
        a.plot(range(len(s["row_valid_share"])), s["row_valid_share"], label=f"{name} ({100 * s['valid_share']:.1f} % valid)", color=c)
    a.set(title="valid pixels per row (row 0 = top)", xlabel="row", ylabel="share valid", ylim=(0, 1.05))
    a.legend()

    def histogram(a, key, width, title, xlabel):
        for name, s, c in series:
            h = s[key]
            a.plot([(i + 0.5) * width(len(h)) for i in range(len(h))], h, label=name, color=c)
        a.set(title=title, xlabel=xlabel, ylabel="share")
        a.legend()

    histogram(ax[0, 1], "range_hist", lambda n: 1.0, "range of valid pixels", "range [m]")
    histogram(ax[1, 0], "intensity_hist", lambda n: 1.0 / n, "intensity (reflectance) of valid pixels", "intensity")
    histogram(ax[1, 1], "normal_z_hist", lambda n: 1.0 / n, "normal direction |n_z| (0 = wall, 1 = ground)", "|n_z|")

    fig.suptitle(f"Projected scans, 64 x 900: {real['scans']} real vs {sim['scans']} simulated frames")
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:4])
