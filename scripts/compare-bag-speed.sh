#!/usr/bin/env bash
# Replay speed of ROS recordings against the same scans from a KITTI folder: writes the folder's
# frames as Velodyne-layout bags (scripts/make-ros-bags.py: rosbag2 MCAP, rosbag2 SQLite 3, ROS 1
# with bz2 chunks) and times whole `replay --no-loops` runs of each with hyperfine, same machine,
# same run.
#   scripts/compare-bag-speed.sh DATASET [FRAMES]     (e.g. ../shared/datasets/kitti-00-0000-0060 61)
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(cd "$1" && pwd)
frames=${2:-61}
cargo build --release --quiet
bin=$PWD/target/release/overlap-slam
work=$PWD/target/compare-bag-speed
mkdir -p "$work"  # the bags are kept between runs (delete the folder to rewrite them)
[ -d "$work/bags" ] || python3 scripts/make-ros-bags.py "$data" "$work/bags" --frames "0..$frames" >/dev/null
common="--no-loops --quiet --frames 0..$frames"
bag="--topic /velodyne_points --set kitti_correction=true --no-loops --quiet"
hyperfine --warmup 1 --runs 5 --export-markdown "$work/table.md" \
  -n "KITTI folder" "$bin replay $data $common" \
  -n "rosbag2 MCAP" "$bin replay $work/bags/velodyne-mcap $bag" \
  -n "rosbag2 SQLite 3" "$bin replay $work/bags/velodyne-sqlite3 $bag" \
  -n "ROS 1 bag (bz2)" "$bin replay $work/bags/velodyne.bag $bag"
cat "$work/table.md"
