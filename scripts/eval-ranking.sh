#!/usr/bin/env bash
# Ranking of loop candidates, as the loop search uses it: Scan Context, OverlapNet and the fused
# detector (Scan Context x OverlapNet) on the same pairs, for one or more OverlapNet weights.
#   - by distance (the place-recognition field's protocol: a pair is a revisit within 8 m) on an
#     unseen simulated world driven with an Ouster OS1-64, a VLP-16 and an HDL-64E (every 5th
#     scan, pairs >= 100 frames apart);
#   - by overlap (OverlapNet's protocol) on held-out simulated world 0 (every 10th scan) and on
#     the real KITTI 00 frames 0-60 of ../shared (every 2nd scan, pairs >= 10 apart, loop > 0.2).
# Prints one markdown table: PR-AUC, recall@1, recall@5 per detector and weights.
# Usage: scripts/eval-ranking.sh OUT_DIR [WEIGHTS...] (default weights: the shipped model).
# SEED (default 3131) picks the world; SENSORS (default "os1-64 vlp16 hdl64") the sensors.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/eval-ranking.sh OUT_DIR [WEIGHTS...]}
shift
weights=("$@")
[ ${#weights[@]} -eq 0 ] && weights=(models/overlapnet.safetensors)
bin=${BIN:-target/release/overlap-slam}
[ -n "${BIN:-}" ] || cargo build --release --quiet
mkdir -p "$out"
seed=${SEED:-3131}

judge() { # data name, then eval-loops arguments without --method
  local name=$1
  shift
  [ -f "$out/$name~scancontext~-/loops_eval.json" ] ||
    "$bin" eval-loops "$@" --method scancontext --out "$out/$name~scancontext~-" --quiet > /dev/null
  for w in "${weights[@]}"; do
    local tag
    tag=$(basename "$(dirname "$w")")-$(basename "$w" .safetensors)
    for m in overlapnet fused; do
      [ -f "$out/$name~$m~$tag/loops_eval.json" ] ||
        "$bin" eval-loops "$@" --method "$m" --weights "$w" --out "$out/$name~$m~$tag" --quiet > /dev/null
    done
  done
}

for sensor in ${SENSORS:-os1-64 vlp16 hdl64}; do
  judge "world$seed-$sensor-8m" --seed "$seed" --sensor "$sensor" --every 5 --min-gap 100 --loop-distance 8
done
judge world0-overlap --seed 0 --every 10
kitti=../shared/datasets/kitti-00-0000-0060
[ -d "$kitti" ] && judge kitti00-overlap "$kitti" --every 2 --min-gap 10 --loop-overlap 0.2

python3 - "$out" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| data | detector | weights | pairs (loops) | PR-AUC | recall@1 | recall@5 |")
print("|---|---|---|---|---|---|---|")
for d in sorted(out.iterdir()):
    if not (d / "loops_eval.json").exists():
        continue
    r = json.loads((d / "loops_eval.json").read_text())
    data, method, tag = d.name.split("~")
    print(f"| {data} | {method} | {tag} | {r['pairs']} ({r['loops']}) | {r['auc']:.3f} | "
          f"{r['recall_at_1']:.3f} | {r['recall_at_n']:.3f} |")
EOF
