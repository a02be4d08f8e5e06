#!/usr/bin/env bash
# Soak test of live ROS 2: `sim-ros2` publishes a simulated VLP-16 drive as PointCloud2 over DDS
# on loopback at 10 Hz to `live --ros2`, which runs the whole pipeline (odometry, loop closure,
# outputs) and publishes odometry, path and /tf. Samples live's resident memory every 10 s and
# prints the memory curve, latency and the subscription's counters (received, lost, malformed).
#
#   scripts/soak-ros2.sh [MINUTES] [extra live options...]    (default 10 minutes)
#
# Outputs land in target/soak-ros2/ (rss.csv, live/metrics.json, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/rss.sh
MINUTES=${1:-10}
shift || true
TOPIC=${TOPIC:-/soak/points}
OUT=${OUT:-target/soak-ros2}
cargo build --release --quiet
BIN=target/release/overlap-slam
rm -rf "$OUT" && mkdir -p "$OUT"

"$BIN" live --ros2 "$TOPIC" --sensor vlp16 --idle-timeout 5 --out "$OUT/live" "$@" >"$OUT/live.log" 2>"$OUT/live.err" &
LIVE=$!
"$BIN" sim-ros2 "$TOPIC" --sweeps $((MINUTES * 600)) >"$OUT/sim.json" 2>"$OUT/sim.err" &
SIM=$!

sample_rss "$SIM" "$LIVE" "$OUT/rss.csv"
wait "$LIVE"

echo "== sim-ros2"; cat "$OUT/sim.json"
echo "== live"; cat "$OUT/live.log"; tail -c 300 "$OUT/live.err"; echo
summarise_rss "$OUT/rss.csv"
grep -E '"(frames|latency_ms_p50|latency_ms_p99|loops_accepted)"' "$OUT/live/metrics.json"
