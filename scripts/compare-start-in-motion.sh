#!/usr/bin/env bash
# Odometry on a recording that starts while the car is moving: kiss-icp 1.3.0 and overlap-slam on
# the same KITTI-layout frames START..END, for each START given, in one run on the local machine.
# Prints ATE (SE(3)-aligned) and the translation error of each of the first registrations
# (frame-to-frame motion against ground truth, LiDAR frame), and the mean over the rest.
#   scripts/compare-start-in-motion.sh DATASET END START [START...]
# e.g. scripts/compare-start-in-motion.sh ../shared/datasets/kitti-00-0000-0060 61 0 20 40
# OURS_BIN replaces the overlap-slam binary (to compare builds); OURS_ARGS adds options to overlap-slam's replay (e.g. OURS_ARGS="--set redeskew=false").
# kiss-icp is installed with pip into a venv under target/ (never a dependency of overlap-slam).
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(cd "$1" && pwd)
end=$2
shift 2
venv=target/kiss-venv
if [ ! -x "$venv/bin/kiss_icp_pipeline" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kiss-icp==1.3.0 "numpy<2"
fi
cargo build --release --quiet
bin=${OURS_BIN:-$PWD/target/release/overlap-slam}
work=$PWD/target/compare-start-in-motion
rm -rf "$work"
mkdir -p "$work/root/sequences/00" "$work/root/poses"
ln -s "$data/velodyne" "$work/root/sequences/00/velodyne"
cp "$data/calib.txt" "$work/root/sequences/00/"
[ -f "$data/times.txt" ] && cp "$data/times.txt" "$work/root/sequences/00/"
cp "$data/poses.txt" "$work/root/poses/00.txt"
for start in "$@"; do
  kiss_icp_out_dir="$work/kiss-$start" "$venv/bin/kiss_icp_pipeline" --dataloader kitti --sequence 00 \
    --jump "$start" --n-scans "$((end - start))" "$work/root" > "$work/kiss-$start.log" 2>&1
  cp "$work/kiss-$start/latest/00_poses_kitti.txt" "$work/kiss-$start.txt"
  "$bin" replay "$data" --frames "$start..$end" --no-loops --quiet ${OURS_ARGS:-} --out "$work/ours-$start" > /dev/null
  cp "$work/ours-$start/poses_kitti.txt" "$work/ours-$start.txt"
done

python3 - "$data" "$work" "$end" "$@" <<'PY'
import sys
import numpy as np
sys.path.insert(0, "scripts")
from kitti_poses import ate, calib_tr, lidar_gt, load_poses as load, step_errors
data, work, end, starts = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(s) for s in sys.argv[4:]]
tr = calib_tr(data)
gt_all = lidar_gt(data)
def ate_origin(est, gt):
    # Both trajectories anchored at their first pose (evo's --align_origin): early errors stay.
    a = [np.linalg.inv(est[0]) @ e for e in est]
    b = [np.linalg.inv(gt[0]) @ g for g in gt]
    return float(np.sqrt(np.mean([np.sum((x[:3, 3] - y[:3, 3]) ** 2) for x, y in zip(a, b)])))
def steps(est, gt):
    return step_errors(est, gt)[0]
print("| start | tool | ATE m | ATE from the first pose m | registration 1 | 2 | 3 | 4 | 5 | mean of the rest m |")
print("|---|---|---|---|---|---|---|---|---|---|")
def rot_deg(est, gt):
    return step_errors(est, gt)[1]
summary = {"kiss": [], "ours": []}
for start in starts:
    gt = gt_all[start:end]
    for tool in ("kiss", "ours"):
        est = load(f"{work}/{tool}-{start}.txt")
        if tool == "kiss":  # kiss-icp's KITTI loader writes camera-frame poses
            est = [np.linalg.inv(tr) @ p @ tr for p in est]
        e = steps(est, gt)
        name = "kiss-icp 1.3.0" if tool == "kiss" else "overlap-slam"
        first = " | ".join(f"{v:.3f}" for v in e[:5])
        summary[tool].append((ate(est, gt), ate_origin(est, gt), np.mean(e[:5]), np.mean(rot_deg(est, gt)[:5]), np.mean(e[5:])))
        print(f"| {start} | {name} | {ate(est, gt):.3f} | {ate_origin(est, gt):.3f} | {first} | {np.mean(e[5:]):.4f} |")
print()
print("| mean over starts | ATE m | ATE from the first pose m | first 5 registrations m | first 5 registrations deg | the rest m |")
print("|---|---|---|---|---|---|")
for tool, name in (("kiss", "kiss-icp 1.3.0"), ("ours", "overlap-slam")):
    m = np.mean(summary[tool], axis=0)
    print(f"| {name} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.4f} | {m[3]:.3f} | {m[4]:.4f} |")
PY
