#!/usr/bin/env bash
# Our KITTI preprocessing and odometry against kiss-icp 1.3.0's, on every real sequence in
# ../shared/datasets (KITTI 00 frames 0-60 and the first five frames of 01-10), in one run here.
#   scripts/compare-deskew.sh [VARIANT...]
# Part 1 compares the two tools' per-point times and deskewed clouds number for number on one
# scan (our `examples/deskew.rs` against kiss-icp's own Preprocessor, through its Python API).
# Part 2 runs both odometries on each sequence and prints one table: mean frame-to-frame
# translation and rotation error against the sequence's poses (LiDAR frame), ATE (SE(3)-aligned),
# and time per frame (kiss-icp: its per-frame timer, as its "Average Runtime"; ours: metrics.json
# stage_ms.odometry). Each VARIANT is a quoted set of extra `replay` options, run as another row,
# e.g. scripts/compare-deskew.sh "--set azimuth_times=true".
# kiss-icp is installed with pip into a venv under target/ (never a dependency of overlap-slam).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared/datasets}
venv=target/kiss-venv
if [ ! -x "$venv/bin/kiss_icp_pipeline" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kiss-icp==1.3.0 "numpy<2"
fi
cargo build --release --quiet --bin overlap-slam --example deskew
work=$PWD/target/compare-deskew
rm -rf "$work"
mkdir -p "$work"
seqs=("$shared/kitti-00-0000-0060")
for s in 01 02 03 04 05 06 07 08 09 10; do seqs+=("$shared/kitti-mini-01-10/$s"); done
variants=("" "$@")
for i in "${!seqs[@]}"; do
  data=$(cd "${seqs[$i]}" && pwd)
  root="$work/root-$i"
  mkdir -p "$root/sequences/00" "$root/poses"
  ln -s "$data/velodyne" "$root/sequences/00/velodyne"
  cp "$data/calib.txt" "$data/times.txt" "$root/sequences/00/"
  cp "$data/poses.txt" "$root/poses/00.txt"
  for v in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    target/release/overlap-slam replay "$data" --no-loops --quiet ${variants[$v]} --out "$work/ours-$i-$v" > /dev/null
  done
done
# Whole processes on KITTI 00 frames 0-60: kiss-icp's own CLI against `replay --no-loops`.
kiss_icp_out_dir="$work/kiss-cli" /usr/bin/time -f "%e %U %S" -o "$work/kiss-cli.time" \
  "$venv/bin/kiss_icp_pipeline" --dataloader kitti --sequence 00 "$work/root-0" > "$work/kiss-cli.log" 2>&1
/usr/bin/time -f "%e %U %S" -o "$work/ours-cli.time" \
  target/release/overlap-slam replay "${seqs[0]}" --no-loops --quiet --out "$work/ours-cli" > /dev/null
"$venv/bin/python" scripts/compare_deskew.py "$work" target/release/examples/deskew "${seqs[@]}" -- "${variants[@]}"
