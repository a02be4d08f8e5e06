#!/usr/bin/env python3
"""Chooses the MIMO spread gate of the loop search from `eval-loops` runs on validation worlds.

Usage: scripts/choose-mimo-gate.py DIR [DIR ...]   (each DIR an `eval-loops --method
overlapnet-mimo` output holding pairs.csv)

Among the pairs the loop search would propose (predicted overlap above 0.3, its acceptance), every
pair of limits on a grid (overlap spread, yaw spread) is tried; the gate is the one that refuses
the most false loops (ground-truth overlap at most 0.3) while keeping at least 90 % of the true
ones. Prints the limits and what they keep and refuse of the proposed pairs, true and false.
"""
import csv
import sys

PROPOSE = 0.3  # LoopSearchConfig::accept_overlap
LOOP = 0.3  # OverlapNet's loop: ground-truth overlap above 0.3
KEEP = 0.90
OVERLAP_LIMITS = [0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, float("inf")]
YAW_LIMITS = [5, 10, 15, 20, 25, 30, 40, 50, 60, 90, float("inf")]


def main(dirs):
    rows = []
    for d in dirs:
        with open(f"{d}/pairs.csv") as f:
            rows += [r for r in csv.DictReader(f) if r["overlap_spread"]]
    proposed = [r for r in rows if float(r["pred_overlap"]) > PROPOSE]
    true = [r for r in proposed if float(r["overlap"]) > LOOP]
    false = [r for r in proposed if float(r["overlap"]) <= LOOP]

    def refuses(limits, r):
        return float(r["overlap_spread"]) > limits[0] or float(r["yaw_spread_deg"]) > limits[1]

    grid = [(o, y) for o in OVERLAP_LIMITS for y in YAW_LIMITS]
    allowed = [g for g in grid if sum(not refuses(g, r) for r in true) >= KEEP * len(true)]
    max_overlap, max_yaw = max(allowed, key=lambda g: (sum(refuses(g, r) for r in false), g))

    def refused(r):
        return refuses((max_overlap, max_yaw), r)

    print(f"pairs {len(rows)}, proposed {len(proposed)} ({len(true)} true, {len(false)} false)")
    print(f"gate: max_overlap {max_overlap:.3f}, max_yaw_deg {max_yaw:.1f}")
    print(f"refused: {sum(map(refused, true))} of {len(true)} true, {sum(map(refused, false))} of {len(false)} false")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
