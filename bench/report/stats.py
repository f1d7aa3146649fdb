"""Small statistics for the evidence report, standard library only.

Invariants: the bootstrap is seeded (the same data give the same interval), intervals are 95%, and paired tests
use only discordant pairs (McNemar's exact binomial test).
"""

import math
import random


def wilson(k, n, z=1.959964):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def paired_bootstrap(a, b, iters=10000, seed=11):
    """95% interval of mean(a) - mean(b) over resampled pairs (a, b are 0/1 lists of equal length)."""
    n = len(a)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    diffs = []
    for _ in range(iters):
        s = 0
        for _ in range(n):
            i = rng.randrange(n)
            s += a[i] - b[i]
        diffs.append(s / n)
    diffs.sort()
    return (diffs[int(0.025 * iters)], diffs[int(0.975 * iters) - 1])


def mcnemar_exact(a, b):
    """Two-sided exact p-value that the discordant pairs split evenly; returns (p, only a right, only b right)."""
    n10 = sum(1 for x, y in zip(a, b) if x and not y)
    n01 = sum(1 for x, y in zip(a, b) if y and not x)
    n = n10 + n01
    if n == 0:
        return 1.0, n10, n01
    k = min(n10, n01)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail), n10, n01


def quantiles(xs, qs=(0.1, 0.5, 0.9)):
    s = sorted(xs)
    if not s:
        return [float("nan")] * len(qs)
    out = []
    for q in qs:
        pos = q * (len(s) - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(s) - 1)
        out.append(s[lo] + (s[hi] - s[lo]) * (pos - lo))
    return out
