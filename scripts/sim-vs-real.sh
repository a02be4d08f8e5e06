#!/usr/bin/env bash
# Compares projected simulated and real KITTI scans (valid pixels per row, range, intensity and
# normal histograms) and draws docs/sim-vs-real.png.
#   scripts/sim-vs-real.sh [KITTI_DIR] [FRAMES]
# Python (matplotlib) is used only for the figure, from a venv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
real=${1:-../shared/datasets/kitti-00-0000-0060}
frames=${2:-0..61}
cargo build --release --quiet
bin=target/release/overlap-slam
work=target/sim-vs-real
mkdir -p "$work"
$bin stats "$real" --frames "$frames" --out "$work/real.json"
$bin stats --frames "$frames" --out "$work/sim.json"
if [ ! -x target/plot-venv/bin/python ]; then
  python3 -m venv target/plot-venv
  target/plot-venv/bin/pip install --quiet matplotlib
fi
target/plot-venv/bin/python scripts/plot_stats.py "$work/real.json" "$work/sim.json" docs/sim-vs-real.png
