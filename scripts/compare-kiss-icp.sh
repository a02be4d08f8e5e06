#!/usr/bin/env bash
# Runs kiss-icp 1.3.0 and overlap-slam on the same frames of a KITTI-layout sequence (a folder with
# velodyne/, calib.txt, poses.txt, times.txt), on the local machine, one after the other, and prints one
# table: whole-process wall time, frames/s, peak memory, ATE and RPE (all scored by
# `overlap-slam eval` in the LiDAR frame), and the speed ratio.
#   scripts/compare-kiss-icp.sh DATASET [FRAMES]
# kiss-icp is installed with pip into a venv under target/ (never a dependency of overlap-slam).
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(cd "$1" && pwd)
total=$(find "$data/velodyne" -name '*.bin' | wc -l)
frames=${2:-$total}
venv=target/kiss-venv
if [ ! -x "$venv/bin/kiss_icp_pipeline" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kiss-icp==1.3.0 "numpy<2"
fi
cargo build --release --quiet
bin=$PWD/target/release/overlap-slam
work=$PWD/target/compare-kiss-icp
rm -rf "$work"
mkdir -p "$work/root/sequences/00" "$work/root/poses"
ln -s "$data/velodyne" "$work/root/sequences/00/velodyne"
cp "$data/calib.txt" "$work/root/sequences/00/"
[ -f "$data/times.txt" ] && cp "$data/times.txt" "$work/root/sequences/00/"
cp "$data/poses.txt" "$work/root/poses/00.txt"

# kiss-icp: its KITTI loader (vertical correction; it passes no per-point times, so no deskew), default config.
kiss_icp_out_dir="$work/kiss-icp-out" /usr/bin/time -f "%e %M" -o "$work/kiss-icp.time" \
  "$venv/bin/kiss_icp_pipeline" --dataloader kitti --sequence 00 --n-scans "$frames" "$work/root" > "$work/kiss-icp.log" 2>&1
"$bin" eval --gt "$work/kiss-icp-out/latest/00_gt_kitti.txt" --est "$work/kiss-icp-out/latest/00_poses_kitti.txt" \
  --calib "$data/calib.txt" > "$work/kiss-icp.json"

# overlap-slam: the same frames with each odometry.
for odo in kiss f2f; do
  /usr/bin/time -f "%e %M" -o "$work/ours-$odo.time" \
    "$bin" replay "$data" --frames "0..$frames" --odometry "$odo" --no-loops --quiet --out "$work/ours-$odo" > /dev/null
  "$bin" eval --gt "$work/ours-$odo/ground_truth_kitti.txt" --est "$work/ours-$odo/poses_kitti.txt" > "$work/ours-$odo.json"
done

python3 - "$work" "$frames" <<'PY'
import json, sys
work, frames = sys.argv[1], int(sys.argv[2])
rows = [("kiss-icp 1.3.0", "kiss-icp"), ("overlap-slam --odometry kiss", "ours-kiss"), ("overlap-slam --odometry f2f", "ours-f2f")]
fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
print(f"| method | frames | wall s | frames/s | max RSS MB | ATE m | RPE % | t_rel % | speed vs kiss-icp |")
print("|---|---|---|---|---|---|---|---|---|")
base = None
for name, stem in rows:
    wall, rss = open(f"{work}/{stem}.time").read().split()
    wall, rss = float(wall), int(rss) / 1024
    m = json.load(open(f"{work}/{stem}.json"))
    fps = frames / wall
    base = base or fps
    print(f"| {name} | {frames} | {wall:.2f} | {fps:.1f} | {rss:.0f} | {fmt(m['ate_rmse_m'], '.3f')} | "
          f"{fmt(m['rpe_trans_pct'], '.2f')} | {fmt(m['t_rel_pct'], '.2f')} | {fps / base:.2f}x |")
PY
