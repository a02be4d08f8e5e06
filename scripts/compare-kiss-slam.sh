#!/usr/bin/env bash
# Runs kiss-slam 0.0.2 and overlap-slam (with and without loop closure) on the same KITTI-layout
# sequence (velodyne/, calib.txt, poses.txt, times.txt; `overlap-slam synth --out DIR` writes one),
# one after the other on the local machine, and prints one table: whole-process wall time, frames/s,
# peak memory, ATE (all scored by `overlap-slam eval` in the LiDAR frame) and loops closed.
#   scripts/compare-kiss-slam.sh DATASET [FRAMES] [-- extra replay options]
# kiss-slam is installed with pip into a venv under target/ (never a dependency of overlap-slam).
# Its open3d needs the system library libusb-1.0 (Debian/Ubuntu: apt-get install libusb-1.0-0).
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(cd "$1" && pwd)
shift
total=$(find "$data/velodyne" -name '*.bin' | wc -l)
frames=$total
if [ $# -gt 0 ] && [ "$1" != "--" ]; then frames=$1; shift; fi
[ "${1:-}" = "--" ] && shift
venv=target/kiss-slam-venv
kiss_slam=$PWD/$venv/bin/kiss_slam_pipeline
if [ ! -x "$venv/bin/kiss_slam_pipeline" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kiss-slam==0.0.2 "numpy<2" pillow matplotlib
fi
cargo build --release --quiet
bin=$PWD/target/release/overlap-slam
work=$PWD/target/compare-kiss-slam
rm -rf "$work"
mkdir -p "$work/root/sequences/00" "$work/root/poses"
ln -s "$data/velodyne" "$work/root/sequences/00/velodyne"
cp "$data/calib.txt" "$work/root/sequences/00/"
[ -f "$data/times.txt" ] && cp "$data/times.txt" "$work/root/sequences/00/"
cp "$data/poses.txt" "$work/root/poses/00.txt"

# kiss-slam: its default config through kiss-icp's KITTI loader; it writes under ./slam_output.
(cd "$work" && /usr/bin/time -f "%e %M" -o "$work/kiss-slam.time" \
  "$kiss_slam" --dataloader kitti --sequence 00 --n-scans "$frames" "$work/root" \
  > "$work/kiss-slam.log" 2>&1)
out="$work/slam_output/latest"
"$bin" eval --gt "$out/00_gt_kitti.txt" --est "$out/00_poses_kitti.txt" --calib "$data/calib.txt" > "$work/kiss-slam.json"
sed -n 's/.*Number of closures found *| *\([0-9]*\).*/\1/p' "$out/result_metrics.log" > "$work/kiss-slam.loops"

# overlap-slam: odometry only, then with loop closure.
for mode in odometry slam; do
  flag=$([ "$mode" = odometry ] && echo --no-loops || true)
  /usr/bin/time -f "%e %M" -o "$work/ours-$mode.time" \
    "$bin" replay "$data" --frames "0..$frames" $flag --quiet --out "$work/ours-$mode" "$@" > /dev/null
  "$bin" eval --gt "$work/ours-$mode/ground_truth_kitti.txt" --est "$work/ours-$mode/poses_kitti.txt" > "$work/ours-$mode.json"
done

python3 - "$work" "$frames" <<'PY'
import json, sys
work, frames = sys.argv[1], int(sys.argv[2])
def loops(stem):
    if stem == "kiss-slam":
        return open(f"{work}/kiss-slam.loops").read().strip() or "n/a"
    m = json.load(open(f"{work}/{stem}/metrics.json"))
    l = m.get("loops")
    if not l:
        return "off"
    return f"{l['loops_accepted']} ({l['loops_true_positive']} true, {l['loops_false_positive']} false, {l['loops_missed']} missed)"
rows = [("kiss-slam 0.0.2", "kiss-slam"), ("overlap-slam --no-loops", "ours-odometry"), ("overlap-slam", "ours-slam")]
print("| method | frames | wall s | frames/s | max RSS MB | ATE m | loops closed |")
print("|---|---|---|---|---|---|---|")
for name, stem in rows:
    wall, rss = open(f"{work}/{stem}.time").read().split()[-2:]
    wall, rss = float(wall), int(rss) / 1024
    ate = json.load(open(f"{work}/{stem}.json"))["ate_rmse_m"]
    print(f"| {name} | {frames} | {wall:.1f} | {frames / wall:.1f} | {rss:.0f} | {ate:.3f} | {loops(stem)} |")
PY
