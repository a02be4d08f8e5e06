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

    a = ax[0, 1]
    for name, s, c in series:
        a.plot([i + 0.5 for i in range(len(s["range_hist"]))], s["range_hist"], label=name, color=c)
    a.set(title="range of valid pixels", xlabel="range [m]", ylabel="share")
    a.legend()

    a = ax[1, 0]
    for name, s, c in series:
        n = len(s["intensity_hist"])
        a.plot([(i + 0.5) / n for i in range(n)], s["intensity_hist"], label=name, color=c)
    a.set(title="intensity (reflectance) of valid pixels", xlabel="intensity", ylabel="share")
    a.legend()

    a = ax[1, 1]
    for name, s, c in series:
        n = len(s["normal_z_hist"])
        a.plot([(i + 0.5) / n for i in range(n)], s["normal_z_hist"], label=name, color=c)
    a.set(title="normal direction |n_z| (0 = wall, 1 = ground)", xlabel="|n_z|", ylabel="share")
    a.legend()

    fig.suptitle(f"Projected scans, 64 x 900: {real['scans']} real vs {sim['scans']} simulated frames")
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:4])
