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

echo "t_s,rss_mb" >"$OUT/rss.csv"
t=0
while kill -0 "$SIM" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$LIVE/status" 2>/dev/null || echo "")
    echo "$t,$rss" >>"$OUT/rss.csv"
    sleep 10
    t=$((t + 10))
done
wait "$LIVE"
"$BIN" eval --gt "$OUT/gt.tum" --est "$OUT/live/poses_tum.txt" --format tum >"$OUT/eval.json"

echo "== live"; cat "$OUT/live.log"
echo "== memory (MB): at 1 min, at the end, growth per minute after the first"
awk -F, 'NR > 1 && $2 != "" { t[n] = $1; r[n] = $2; n++ }
    END {
        for (i = 0; i < n; i++) if (t[i] >= 60) { a = i; break }
        printf "%.1f at %d s, %.1f at %d s, %.2f MB/min\n", r[a], t[a], r[n-1], t[n-1], (r[n-1] - r[a]) / ((t[n-1] - t[a]) / 60)
    }' "$OUT/rss.csv"
echo "== ATE against the simulator's ground truth"; grep -E '"(frames|ate_rmse_m|t_rel_pct)"' "$OUT/eval.json"
