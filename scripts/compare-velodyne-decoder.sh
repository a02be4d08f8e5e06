#!/usr/bin/env bash
# Our Velodyne driver against velodyne_decoder 3.0.0 (a C++ decoder with Python bindings, on PyPI)
# on the same captures, written by `sim-velodyne`: decode speed (whole pcap, packets/s, best of
# three), and the decoded points compared sweep by sweep (nearest-neighbour distance from each of our
# points to theirs).
#
#   scripts/compare-velodyne-decoder.sh [SWEEPS]     (default 300 sweeps per sensor)
set -euo pipefail
cd "$(dirname "$0")/.."
SWEEPS=${1:-300}
VENV=target/vd-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import velodyne_decoder" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q velodyne_decoder==3.0.0
fi
cargo build --release --quiet
BIN=target/release/overlap-slam
W=target/vd-compare
rm -rf "$W" && mkdir -p "$W"
echo "| sensor | packets | ours packets/s | velodyne_decoder packets/s | ratio | sweeps ours / theirs | points per sweep ours / theirs | NN distance median / p99 / max mm |"
echo "|---|---|---|---|---|---|---|---|"
for sensor in vlp16 hdl32e; do
    "$BIN" sim-velodyne --sensor "$sensor" --sweeps "$SWEEPS" --fast --quiet --pcap-out "$W/$sensor.pcap"
    for i in 1 2 3; do
        "$BIN" decode --pcap "$W/$sensor.pcap" --sensor "$sensor" >"$W/$sensor-ours-$i.json"
    done
    "$BIN" decode --pcap "$W/$sensor.pcap" --sensor "$sensor" --out "$W/$sensor-pcd" >/dev/null
    "$VENV/bin/python" - "$W" "$sensor" <<'PY'
import glob, json, sys, time
import numpy as np
import velodyne_decoder as vd

work, sensor = sys.argv[1], sys.argv[2]
model = {"vlp16": vd.Model.VLP16, "hdl32e": vd.Model.HDL32E}[sensor]
runs = [json.load(open(f"{work}/{sensor}-ours-{i}.json")) for i in (1, 2, 3)]
packets = runs[0]["link"]["packets"]
ours_rate = max(r["packets_per_s"] for r in runs)

best, theirs = None, None
for _ in range(3):
    t = time.perf_counter()
    scans = [pts for _, pts in vd.read_pcap(f"{work}/{sensor}.pcap", vd.Config(model=model, cut_angle=0.0))]
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
    theirs = scans
their_rate = packets / best


def read_pcd(path):
    with open(path, "rb") as f:
        header = {}
        while True:
            line = f.readline().decode().strip()
            key, _, value = line.partition(" ")
            header[key] = value.split()
            if key == "DATA":
                break
        sizes = [int(s) for s in header["SIZE"]]
        types = {("F", 4): "<f4", ("U", 2): "<u2"}
        dtype = np.dtype([(n, types[(t, s)]) for n, t, s in zip(header["FIELDS"], header["TYPE"], sizes)])
        data = np.frombuffer(f.read(), dtype=dtype, count=int(header["POINTS"][0]))
    return np.stack([data["x"], data["y"], data["z"]], axis=1).astype(np.float64)


ours = [read_pcd(p) for p in sorted(glob.glob(f"{work}/{sensor}-pcd/*.pcd"))]
rng = np.random.default_rng(0)
dists = []
for k in range(0, len(ours), max(1, len(ours) // 10)):
    mine = ours[k][rng.choice(len(ours[k]), size=min(800, len(ours[k])), replace=False)]
    best_d = None
    # Sweep numbering may differ by the first partial sweep: take the best neighbour sweep.
    for j in (k - 1, k, k + 1):
        if 0 <= j < len(theirs):
            other = np.asarray(theirs[j])[:, :3].astype(np.float64)
            d = np.sqrt(((mine[:, None, :] - other[None, :, :]) ** 2).sum(-1)).min(1)
            if best_d is None or np.median(d) < np.median(best_d):
                best_d = d
    dists.append(best_d)
d = np.concatenate(dists) * 1000
mean_ours = np.mean([len(o) for o in ours])
mean_theirs = np.mean([len(t) for t in theirs])
print(
    f"| {sensor} | {packets} | {ours_rate:.0f} | {their_rate:.0f} | {ours_rate / their_rate:.2f}x | "
    f"{len(ours)} / {len(theirs)} | {mean_ours:.0f} / {mean_theirs:.0f} | "
    f"{np.median(d):.2f} / {np.percentile(d, 99):.2f} / {d.max():.2f} |"
)
PY
done
