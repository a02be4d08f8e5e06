"""Part 1 and 2 of scripts/compare-deskew.sh (run there, with kiss-icp 1.3.0's venv Python).

argv: WORK DESKEW_EXAMPLE SEQ_DIR... -- VARIANT...
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
from kiss_icp.config import load_config
from kiss_icp.datasets.kitti import KITTIOdometryDataset
from kiss_icp.kiss_icp import KissICP
from kiss_icp.pybind import kiss_icp_pybind as kp
from kitti_poses import ate, lidar_gt, load_poses, step_errors

work, example = sys.argv[1], sys.argv[2]
split = sys.argv.index("--")
seqs, variants = sys.argv[3:split], sys.argv[split + 1 :]


# ---- Part 1: one scan, number for number -------------------------------------------------------
seq0 = seqs[0]
frame = 30
gt = lidar_gt(seq0)
motion = np.linalg.inv(gt[frame - 1]) @ gt[frame]  # the sensor's motion over the frame before
u, _, vt = np.linalg.svd(motion[:3, :3])  # the file's 9 digits are not orthogonal enough for Sophus
motion[:3, :3] = u @ vt
root0 = f"{work}/root-0"
dataset = KITTIOdometryDataset(root0, "00")
points, stamps = dataset[frame]
pre = kp._Preprocessor(1e9, 0.0, True, 0)  # 0: all threads (1 would pin kiss-icp to one for the run)
theirs = np.asarray(pre._preprocess(kp._Vector3dVector(points), stamps.ravel(), motion))
print(f"## Part 1: KITTI 00 frame {frame}, {len(points)} points, motion {np.linalg.norm(motion[:3, 3]):.3f} m "
      f"and {np.degrees(np.arccos(np.clip((np.trace(motion[:3, :3]) - 1) / 2, -1, 1))):.3f} deg a frame")
print()
print(f"- kiss-icp's KITTI loader gives {len(stamps)} per-point times; its Preprocessor (deskew on, the "
      f"motion above) returns the loader's points moved by at most {np.abs(theirs - points).max():.3g} m: "
      "kiss-icp 1.3.0 does not deskew KITTI scans.")
scan_file = dataset.scan_files[frame]
dump = f"{work}/ours.f64"
args = [f"{v:.17g}" for v in motion[:3].ravel()]
rows = {}
for ref in ("end", "mid"):
    subprocess.run([example, scan_file, "0.1", ref, dump, *args], check=True)
    rows[ref] = np.fromfile(dump, dtype="<f8").reshape(-1, 4)
ours_t = rows["end"][:, 0]
raw = np.fromfile(scan_file, dtype=np.float32).reshape(-1, 4)[:, :3].astype(np.float64)
norm_t = (ours_t - ours_t.min()) / (ours_t.max() - ours_t.min())
their_on_ours = np.asarray(pre._preprocess(kp._Vector3dVector(raw), norm_t, motion))
d_end = np.linalg.norm(rows["end"][:, 1:] - their_on_ours, axis=1)
print(f"- Our azimuth times span {ours_t.min() * 1e3:.2f} to {ours_t.max() * 1e3:.2f} ms "
      "(clockwise from behind the car, 0 facing forward).")
print(f"- Given our times (normalised as it does) and the same motion, kiss-icp's Preprocessor and ours "
      f"(reference at the sweep's end, as kiss-icp's) differ by mean {d_end.mean() * 1e3:.3f} mm, "
      f"max {d_end.max() * 1e3:.3f} mm: the same deskew.")
moved = np.linalg.norm(rows["mid"][:, 1:] - raw, axis=1)
print(f"- Deskewing this already motion-compensated scan (our former KITTI default, mid-sweep reference) "
      f"moves its points by mean {moved.mean() * 100:.1f} cm, max {moved.max() * 100:.1f} cm.")
print()


# ---- Part 2: odometry on every sequence ---------------------------------------------------------
def run_kiss(root):
    data = KITTIOdometryDataset(root, "00")
    odom = KissICP(load_config(None))
    poses, ms = [], []
    for idx in range(len(data)):
        frame, stamps = data[idx]
        start = time.perf_counter_ns()
        odom.register_frame(frame, stamps)
        ms.append((time.perf_counter_ns() - start) * 1e-6)
        poses.append(odom.last_pose.copy())
    return poses, float(np.mean(ms))


names = ["kiss-icp 1.3.0", "overlap-slam"] + [f"overlap-slam {v}" for v in variants[1:]]
print("## Part 2: odometry, every real sequence")
print()
print("| sequence | frames | " + " | ".join(f"{n}: frame-to-frame m / deg, ATE m" for n in names) + " |")
print("|---|---|" + "---|" * len(names))
totals = {n: [] for n in names}
timing = None
for i, seq in enumerate(seqs):
    gt = lidar_gt(seq)
    kiss, kiss_ms = run_kiss(f"{work}/root-{i}")
    cells, results = [], [(kiss, None)]
    for v in range(len(variants)):
        results.append((load_poses(f"{work}/ours-{i}-{v}/poses_kitti.txt"), f"{work}/ours-{i}-{v}/metrics.json"))
    for name, (est, metrics) in zip(names, results):
        t, r = (float(np.mean(e)) for e in step_errors(est, gt[: len(est)]))
        a = ate(est, gt[: len(est)])
        totals[name].append((t, r, a))
        cells.append(f"{t:.4f} / {r:.3f}, {a:.3f}")
    if i == 0:
        ours_ms = json.load(open(results[1][1]))["stage_ms"]["odometry"]
        timing = (len(gt), kiss_ms, ours_ms)
    label = os.path.basename(seq.rstrip("/"))
    print(f"| {label} | {len(gt)} | " + " | ".join(cells) + " |")
means = [np.mean(totals[n], axis=0) for n in names]
print("| mean of the 11 | | " + " | ".join(f"{m[0]:.4f} / {m[1]:.3f}, {m[2]:.3f}" for m in means) + " |")
wins = sum(1 for k in range(len(seqs)) if totals[names[1]][k][0] <= totals[names[0]][k][0])
print()
print(f"overlap-slam's frame-to-frame translation error is <= kiss-icp's on {wins} of {len(seqs)} sequences.")
n, kms, oms = timing
print()
print(f"Time a frame on {os.path.basename(seqs[0].rstrip('/'))} ({n} frames): kiss-icp {kms:.1f} ms, "
      f"overlap-slam {oms:.1f} ms (stage_ms.odometry): ratio {oms / kms:.2f}")
for name, stem in (("kiss-icp 1.3.0 (kiss_icp_pipeline)", "kiss-cli"), ("overlap-slam replay --no-loops", "ours-cli")):
    wall, user, sys_ = (float(v) for v in open(f"{work}/{stem}.time").read().split())
    print(f"Whole process, {name}: {wall:.2f} s wall, {user + sys_:.2f} s CPU")
kiss_cpu = sum(float(v) for v in open(f"{work}/kiss-cli.time").read().split()[1:])
ours_cpu = sum(float(v) for v in open(f"{work}/ours-cli.time").read().split()[1:])
print(f"CPU time ratio: {ours_cpu / kiss_cpu:.2f}")
