"""Seed statistics for comparing two settings (compare.py's "vs reference" table).

Two settings that were trained with the same seeds are compared *paired*: per shared
seed s, d_s = value(setting, s) - value(reference, s), and the spread of the d_s is the
seed noise of the *difference*. Where runs of one seed share randomness (the same ray
batches, say), pairing cancels it; where they share none, the paired test is still
valid, only no more powerful than an unpaired one.

"Within seed noise" is decided by a two-sided paired t-test (scipy.stats.t, df = n - 1)
at the 5 % level: p >= 0.05 is within seed noise, which is the same as the 95 %
t confidence interval of the mean difference, mean ± t_{0.975, n-1} · sd / sqrt(n),
containing 0. With n = 1 there is no noise estimate; with n = 0 nothing is compared.
"Within seed noise" means these seeds cannot tell the settings apart, not that the
settings are equal: with 2 or 3 seeds only differences well above the seed spread are
detected (t_{0.975} = 12.7 at n = 2, 4.3 at n = 3). No correction is made for comparing
several settings with one reference.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

ALPHA = 0.05


@dataclass
class Paired:
    """The paired comparison of one number between a setting and the reference."""
    seeds: List[int] = field(default_factory=list)
    diffs: List[float] = field(default_factory=list)   # setting - reference, per seed
    mean: Optional[float] = None
    std: Optional[float] = None                        # sample std (ddof = 1) of the diffs
    p: Optional[float] = None                          # two-sided paired t-test
    ci: Optional[Tuple[float, float]] = None           # 95 % t interval of the mean diff
    verdict: str = "no shared seeds: not compared"

    @property
    def n(self) -> int:
        return len(self.diffs)


def t_test(diffs: List[float]) -> Tuple[float, Tuple[float, float]]:
    """(two-sided p, 95 % confidence interval of the mean) of a one-sample t-test of
    ``diffs`` (n >= 2) against 0. Identical diffs: p = 0 unless they are all 0 (p = 1)."""
    from scipy import stats
    n = len(diffs)
    mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:
        return (1.0 if mean == 0.0 else 0.0), (mean, mean)
    t = mean / (sd / math.sqrt(n))
    return float(2.0 * stats.t.sf(abs(t), n - 1)), (mean - half, mean + half)


def paired(setting: Dict[int, float], reference: Dict[int, float]) -> Paired:
    """Paired statistics of ``setting`` - ``reference`` over their shared seeds ({seed: value})."""
    seeds = sorted(set(setting) & set(reference))
    result = Paired(seeds=seeds, diffs=[float(setting[s]) - float(reference[s]) for s in seeds])
    if result.n == 0:
        return result
    result.mean = float(np.mean(result.diffs))
    if result.n == 1:
        result.verdict = "one seed: no noise estimate"
        return result
    result.std = float(np.std(result.diffs, ddof=1))
    try:
        result.p, result.ci = t_test(result.diffs)
    except ImportError:
        result.verdict = "no test: scipy is not installed"
        return result
    if result.p >= ALPHA:
        result.verdict = "within seed noise"
    else:
        result.verdict = ("higher" if result.mean > 0 else "lower") + " than the reference, beyond seed noise"
    return result
