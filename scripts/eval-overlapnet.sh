#!/usr/bin/env bash
# Judges OverlapNet weights against Scan Context on the same pairs: held-out simulated worlds
# (OverlapNet's protocol: every 10th frame, pairs >= 100 frames apart, loop = overlap > 0.3) and
# the real KITTI 00 frames 0-60 of ../shared (pairs >= 10 apart, loop > 0.2; all frames, and every
# 2nd), the real validation split (KITTI 08, 09 and 10,
# five scans each, pairs across them true negatives: eval-loops --also), then prints one
# markdown table, then the MIMO model's uncertainty figures (spread against error, and what the
# loop search's spread gate keeps and refuses). Usage: scripts/eval-overlapnet.sh [WEIGHTS] [OUT_DIR]
# (WEIGHTS: a .safetensors with its .json, or the authors' model_geo.weight, for the single
# model; default: shipped). METHODS (default "overlapnet overlapnet-mimo scancontext") and SEEDS
# (default "0 950 951") narrow the run; the validation worlds 900 and 901 choose the gate.
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-}
out=${2:-/tmp/eval-overlapnet}
bin=target/release/overlap-slam
cargo build --release --quiet
mkdir -p "$out"
w=()
[ -n "$weights" ] && w=(--weights "$weights")

run() { # name, method, extra args...
  local name=$1 method=$2
  shift 2
  local extra=()
  [ "$method" = overlapnet ] && extra=("${w[@]}")
  "$bin" eval-loops "$@" --method "$method" "${extra[@]}" --out "$out/$name-$method" --quiet > /dev/null
}

methods=${METHODS:-overlapnet overlapnet-mimo scancontext}
for seed in ${SEEDS:-0 950 951}; do
  for m in $methods; do run "sim$seed" "$m" --seed "$seed" --every 10; done
done
kitti=../shared/datasets/kitti-00-0000-0060
if [ -d "$kitti" ] && [ -z "${NO_KITTI:-}" ]; then
  for m in $methods; do run kitti "$m" "$kitti" --min-gap 10 --loop-overlap 0.2; done
  for m in $methods; do run kitti2 "$m" "$kitti" --min-gap 10 --loop-overlap 0.2 --every 2; done
fi
mini=../shared/datasets/kitti-mini-01-10
if [ -d "$mini" ] && [ -z "${NO_KITTI:-}" ]; then
  for m in $methods; do
    run val0810 "$m" "$mini/08" --also "$mini/09" --also "$mini/10" --min-gap 1 --rotated-copies 15
  done
fi

python3 - "$out" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| data | detector | pairs (loops) | PR-AUC | F1max | recall@1 | overlap MAE | across places: mean overlap / score | yaw on loops, mean / median | turned copies, mean / median | descriptors/s | pairs/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def across(r):
    a = r.get("across")
    if not a:
        return "—"
    o = "—" if a["pred_overlap_mean"] is None else f"{a['pred_overlap_mean']:.3f}"
    return f"{a['pairs']} pairs: {o} / {a['score_mean']:.3f}"
for d in sorted(out.iterdir()):
    r = json.loads((d / "loops_eval.json").read_text())
    f = lambda v, p="{:.3f}": "—" if v is None else p.format(v)
    data, method = d.name.split("-", 1)
    print(f"| {data} | {method} | {r['pairs']} ({r['loops']}) | {r['auc']:.3f} | {r['f1_max']:.3f} | "
          f"{r['recall_at_1']:.3f} | {f(r['overlap_mae'])} | {across(r)} | {f(r['yaw_err_mean_deg'], '{:.1f}')}° / "
          f"{f(r['yaw_err_median_deg'], '{:.1f}')}° | {f(r['yaw_rotated_err_mean_deg'], '{:.1f}')}° / "
          f"{f(r['yaw_rotated_err_median_deg'], '{:.1f}')}° | {r['descriptor_scans_per_s']:.0f} | {r['head_pairs_per_s']:.0f} |")
print()
print("| data | overlap spread, mean | yaw spread, mean | corr(spread, abs error) | rank corr | corr(yaw spread, yaw error) on loops | gate: kept true / false, refused true / false |")
print("|---|---|---|---|---|---|---|")
for d in sorted(out.iterdir()):
    r = json.loads((d / "loops_eval.json").read_text())
    u = r.get("uncertainty")
    if not u:
        continue
    g = u["gate"]
    print(f"| {d.name.split('-', 1)[0]} | {u['overlap_spread_mean']:.3f} | {u['yaw_spread_mean_deg']:.1f}° | "
          f"{u['spread_error_correlation']:.3f} | {u['spread_error_rank_correlation']:.3f} | "
          f"{u['yaw_spread_error_correlation']:.3f} | {g['kept_true']} / {g['kept_false']}, {g['refused_true']} / {g['refused_false']} |")
EOF
