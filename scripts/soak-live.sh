#!/usr/bin/env bash
# Soak test of the live path: `sim-velodyne` sends a simulated VLP-16 drive over loopback at the
# sensor's real rate (10 Hz, 754 packets/s) to `live`, which runs the whole pipeline (odometry,
# loop closure, outputs). Samples live's resident memory every 10 s and prints the memory curve,
# the latency, the link counters and the ATE against the simulator's ground truth.
#
#   scripts/soak-live.sh [MINUTES] [extra live options...]    (default 10 minutes)
#
# Outputs land in target/soak/ (rss.csv, live/metrics.json, eval.json, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/rss.sh
MINUTES=${1:-10}
shift || true
PORT=${PORT:-23690}
OUT=${OUT:-target/soak}
cargo build --release --quiet
BIN=target/release/overlap-slam
rm -rf "$OUT" && mkdir -p "$OUT"

"$BIN" live --udp "127.0.0.1:$PORT" --idle-timeout 5 --out "$OUT/live" "$@" >"$OUT/live.log" 2>"$OUT/live.err" &
LIVE=$!
sleep 1
"$BIN" sim-velodyne --udp "127.0.0.1:$PORT" --sweeps $((MINUTES * 600)) --gt-out "$OUT/gt.tum" --quiet >"$OUT/sim.json" 2>"$OUT/sim.err" &
SIM=$!

sample_rss "$SIM" "$LIVE" "$OUT/rss.csv"
wait "$LIVE"
"$BIN" eval --gt "$OUT/gt.tum" --est "$OUT/live/poses_tum.txt" --format tum >"$OUT/eval.json"

echo "== live"; cat "$OUT/live.log"
summarise_rss "$OUT/rss.csv"
echo "== ATE against the simulator's ground truth"; grep -E '"(frames|ate_rmse_m|t_rel_pct)"' "$OUT/eval.json"
