#!/usr/bin/env python3
# Would fusing the two loop detectors rank pairs better than either alone? Reads the pairs.csv of
# two eval-loops runs over the same pairs (Scan Context's first, OverlapNet's second; the `loop`
# column of the first is the truth) and prints average precision, recall@1 and recall@5 for each
# detector and for five fusions of their scores (mean, mean rank, max rank, min rank, product).
#
#   overlap-slam eval-loops DATA --method scancontext --out sc ...
#   overlap-slam eval-loops DATA --method overlapnet --out on ...
#   python3 scripts/compare-fusion.py sc/pairs.csv on/pairs.csv
import csv, sys, math, collections
def load(path):
    rows = {}
    for r in csv.DictReader(open(path)):
        rows[(int(r['query']), int(r['reference']))] = r
    return rows
sc, on = load(sys.argv[1]), load(sys.argv[2])
keys = sorted(set(sc) & set(on))
loop = {k: sc[k]['loop'] == '1' for k in keys}
def ap(scores):
    order = sorted(keys, key=lambda k: -scores[k])
    P = sum(loop.values()); tp = 0; s = 0.0; last = 0.0
    for i, k in enumerate(order, 1):
        if loop[k]:
            tp += 1; s += tp / i * (1 / P)
    return s
def recall_at(scores, n):
    byq = collections.defaultdict(list)
    for k in keys: byq[k[0]].append((scores[k], loop[k]))
    w = [v for v in byq.values() if any(l for _, l in v)]
    return sum(any(l for _, l in sorted(v, key=lambda x: -x[0])[:n]) for v in w) / max(1, len(w))
s_sc = {k: float(sc[k]['score']) for k in keys}
s_on = {k: float(on[k]['score']) for k in keys}
def ranks(s):
    order = sorted(keys, key=lambda k: s[k]); return {k: i / len(keys) for i, k in enumerate(order)}
r_sc, r_on = ranks(s_sc), ranks(s_on)
cands = {'scancontext': s_sc, 'overlapnet': s_on,
         'mean': {k: (s_sc[k] + s_on[k]) / 2 for k in keys},
         'rank-mean': {k: (r_sc[k] + r_on[k]) / 2 for k in keys},
         'max-rank': {k: max(r_sc[k], r_on[k]) for k in keys},
         'min-rank': {k: min(r_sc[k], r_on[k]) for k in keys},
         'product': {k: s_sc[k] * s_on[k] for k in keys}}
print(f"{len(keys)} pairs, {sum(loop.values())} loops")
for name, s in cands.items():
    print(f"{name:12s} AP {ap(s):.3f}  R@1 {recall_at(s,1):.3f}  R@5 {recall_at(s,5):.3f}")
