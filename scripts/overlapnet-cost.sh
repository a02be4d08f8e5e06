#!/usr/bin/env bash
# What OverlapNet costs as whole commands, against Scan Context in the same run: `eval-loops` on
# many pairs (pairs/s of the whole process, user and system time), and `replay` with each loop
# detector (peak resident memory, loop search per keyframe, loops closed). Run it on an idle
# machine (pause any training: kill -STOP). Usage:
#   scripts/overlapnet-cost.sh [WEIGHTS] [OUT_DIR]
# WEIGHTS: OverlapNet weights (.safetensors with its .json); default: the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-}
out=${2:-/tmp/overlapnet-cost}
bin=target/release/overlap-slam
cargo build --release --quiet
mkdir -p "$out"
w=()
[ -n "$weights" ] && w=(--weights "$weights")
kitti=../shared/datasets/kitti-00-0000-0060

timed() { # name, command...
  local name=$1
  shift
  /usr/bin/time -v "$@" > "$out/$name.stdout" 2> "$out/$name.time"
}

# eval-loops: the simulated drive's every 2nd scan (283 scans, pairs >= 10 frames apart).
timed eval-overlapnet "$bin" eval-loops --every 2 --min-gap 10 --rotated-copies 10 "${w[@]}" --out "$out/eval-overlapnet" --quiet
timed eval-scancontext "$bin" eval-loops --every 2 --min-gap 10 --rotated-copies 10 --method scancontext --out "$out/eval-scancontext" --quiet
# replay: the embedded default (565 frames, 57 keyframes, revisits) and KITTI 00 frames 0-60.
for d in overlapnet scancontext; do
  extra=()
  [ "$d" = overlapnet ] && extra=("${w[@]}")
  timed "replay-default-$d" "$bin" replay --quiet --loop-detector "$d" "${extra[@]}" --out "$out/replay-default-$d"
  if [ -d "$kitti" ]; then
    timed "replay-kitti-$d" "$bin" replay "$kitti" --quiet --loop-detector "$d" "${extra[@]}" --out "$out/replay-kitti-$d"
  fi
done

python3 - "$out" <<'EOF'
import json, re, sys, pathlib
out = pathlib.Path(sys.argv[1])
def times(name):
    t = (out / f"{name}.time").read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    wall_s = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
    user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    return wall_s, user, sys_, rss
print("| command | detector | pairs | whole process pairs/s | user / system s | peak RSS |")
print("|---|---|---|---|---|---|")
for d in ["overlapnet", "scancontext"]:
    r = json.loads((out / f"eval-{d}" / "loops_eval.json").read_text())
    wall, user, sys_, rss = times(f"eval-{d}")
    print(f"| eval-loops, simulated drive every 2nd scan | {d} | {r['pairs']} | {r['pairs'] / wall:.0f} | {user:.1f} / {sys_:.1f} | {rss:.0f} MB |")
print()
print("| replay | detector | peak RSS | loop search per keyframe | loops accepted (true / false) | candidates (verified) | ATE |")
print("|---|---|---|---|---|---|---|")
for data in ["default", "kitti"]:
    for d in ["overlapnet", "scancontext"]:
        m = out / f"replay-{data}-{d}" / "metrics.json"
        if not m.exists():
            continue
        r = json.loads(m.read_text())
        l = r["loops"]
        wall, user, sys_, rss = times(f"replay-{data}-{d}")
        csv = (out / f"replay-{data}-{d}" / "loops.csv").read_text().splitlines()[1:]
        verified = sum(1 for row in csv if row.split(",")[4] != "")
        print(f"| {data} | {d} | {rss:.0f} MB | {l['ms_per_keyframe']:.0f} ms | {l['loops_accepted']} "
              f"({l.get('loops_true_positive')} / {l.get('loops_false_positive')}) | {len(csv)} ({verified}) | {r['ate_rmse_m']:.3f} m |")
EOF
