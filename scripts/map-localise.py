#!/usr/bin/env python3
"""Figures for saved maps (README, "Maps that outlive a run").

Maps simulated world 0 with its default drive, then starts 20 runs of other drives through the
same world at random frames (forward and, after their turn-around, driven the other way) with
--map, each also without a map; then 20 runs in other worlds (outside the map), which must never
be localised; then KITTI 00: map frames 0..40, localise frames 20..60, against the same run
without a map. Prints one table per part and writes every run's metrics.json under WORK.

usage: scripts/map-localise.py [BINARY] [WORK] [KITTI_DIR]
"""
import json
import os
import random
import statistics
import subprocess
import sys

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/overlap-slam"
WORK = sys.argv[2] if len(sys.argv) > 2 else "/tmp/map-localise"
KITTI = sys.argv[3] if len(sys.argv) > 3 else "../shared/datasets/kitti-00-0000-0060"
FRAMES = 60  # each localising run: 6 s of driving
STARTS = 20


def replay(name, *args):
    """Runs `replay` with ARGS, output in WORK/NAME; returns its metrics."""
    out = os.path.join(WORK, name)
    subprocess.run([BIN, "replay", "--quiet", "--out", out, *args], check=True)
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def inside(map_dir, rng):
    print("\n## 20 starts inside the map (other drives through world 0)\n")
    print("| drive | start frame | localised | frames to fix | s to fix | fix error m, deg | vs GT in map frame m | ATE in map frame after fix m | error to map m | ATE with map / without m |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for i in range(STARTS):
        drive, start = i + 1, rng.randrange(0, 700)
        frames = f"{start}..{start + FRAMES}"
        m = replay(f"in-{drive}", "--drive", str(drive), "--frames", frames, "--map", map_dir)
        base = replay(f"in-{drive}-nomap", "--drive", str(drive), "--frames", frames)
        l = m["localisation"]
        rows.append((l, m["ate_rmse_m"], base["ate_rmse_m"]))
        err = f"{fmt(l['fix_error_m'])}, {fmt(l['fix_error_deg'], '.1f')}"
        print(f"| {drive} | {start} | {l['localised']} | {fmt(l['frames_to_fix'], 'd')} | {fmt(l['seconds_to_fix'], '.1f')} | {err} | "
              f"{fmt(l['fix_error_world_m'])} | {fmt(l['ate_map_after_fix_m'])} | {fmt(l['error_to_map_m'])} | "
              f"{fmt(m['ate_rmse_m'], '.3f')} / {fmt(base['ate_rmse_m'], '.3f')} |")
    fixed = [r for r in rows if r[0]["localised"]]
    print(f"\nlocalised {len(fixed)} of {len(rows)}")
    if fixed:
        med = lambda k: statistics.median(r[0][k] for r in fixed if r[0][k] is not None)
        print(f"median: {med('frames_to_fix')} frames, {med('seconds_to_fix'):.1f} s, {med('metres_to_fix'):.1f} m to fix; "
              f"fix error {med('fix_error_m'):.2f} m, {med('fix_error_deg'):.2f} deg; ATE in map frame after fix {med('ate_map_after_fix_m'):.2f} m; "
              f"error to map {med('error_to_map_m'):.2f} m")
        worst = max(r[0]["fix_error_m"] for r in fixed if r[0]["fix_error_m"] is not None)
        print(f"largest fix error {worst:.2f} m")
        better = sum(1 for r in fixed if r[1] <= r[2] + 1e-3)
        print(f"ATE (aligned) with the map <= without (+1 mm): {better} of {len(fixed)}; "
              f"mean {statistics.mean(r[1] for r in fixed):.3f} against {statistics.mean(r[2] for r in fixed):.3f} m")


def outside(map_dir, rng):
    print("\n## 20 starts outside the map (worlds 1001..1020)\n")
    wrong = 0
    for i in range(STARTS):
        seed, start = 1001 + i, rng.randrange(0, 500)
        m = replay(f"out-{seed}", "--seed", str(seed), "--frames", f"{start}..{start + FRAMES}", "--map", map_dir)
        l = m["localisation"]
        wrong += l["localised"]
        print(f"world {seed} frames {start}..{start + FRAMES}: localised {l['localised']}, hypotheses {l['hypotheses']}, "
              f"ambiguous {l['ambiguous_keyframes']}, contradicted {l['contradicted']}")
    print(f"\nwrong fixes: {wrong} of {STARTS}")


def kitti():
    if not os.path.isdir(KITTI):
        print(f"\n{KITTI}: absent, KITTI part skipped")
        return
    print("\n## KITTI 00: map frames 0..40, localise frames 20..60\n")
    map_dir = os.path.join(WORK, "kitti-map")
    mapped = replay("kitti-map-run", KITTI, "--frames", "0..40", "--save-map", map_dir)
    m = replay("kitti-loc", KITTI, "--frames", "20..60", "--map", map_dir)
    base = replay("kitti-loc-nomap", KITTI, "--frames", "20..60")
    l = m["localisation"]
    print(f"map: {mapped['saved_map']['keyframes']} keyframes, {mapped['saved_map']['bytes']} bytes")
    print(f"localised {l['localised']} at frame {l['fix_frame']} after {l['frames_to_fix']} frames ({fmt(l['seconds_to_fix'], '.1f')} s); "
          f"fix error {fmt(l['fix_error_m'])} m, {fmt(l['fix_error_deg'])} deg; vs GT in map frame {fmt(l['fix_error_world_m'])} m; "
          f"ATE in map frame after fix {fmt(l['ate_map_after_fix_m'], '.3f')} m, all frames {fmt(l['ate_map_m'], '.3f')} m; map loops {l['map_loops']}")
    print(f"ATE (aligned) with the map {m['ate_rmse_m']:.3f} m, without {base['ate_rmse_m']:.3f} m")


def main():
    os.makedirs(WORK, exist_ok=True)
    rng = random.Random(26)
    map_dir = os.path.join(WORK, "world0-map")
    mapped = replay("world0-map-run", "--save-map", map_dir)
    s = mapped["saved_map"]
    print(f"map of world 0: {s['keyframes']} keyframes, {s['bytes']} bytes over {s['travelled_m']:.0f} m "
          f"({s['bytes_per_km'] / 1e6:.1f} MB/km), mapping run ATE {mapped['ate_rmse_m']:.3f} m")
    inside(map_dir, rng)
    outside(map_dir, rng)
    kitti()


if __name__ == "__main__":
    main()
