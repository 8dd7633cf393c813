"""Intrinsic performance (Hilton et al. 2023): a result expressed in FLOPs.

The compute frontier of a score (e.g. closed-loop success) is the best score any
run reached with at most C FLOPs. A run's intrinsic performance is the least
compute on that frontier that reaches the run's own score, log-linear in C between
frontier points. Being in FLOPs, it can be fitted like compute (e.g. against N).
"""

from __future__ import annotations

import numpy as np


def compute_frontier(C: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best ``score`` reached with at most C FLOPs, at the runs' compute values
    (sorted by C): (C, best score so far)."""
    order = np.argsort(C, kind="stable")
    return C[order], np.maximum.accumulate(score[order])


def intrinsic_performance(C: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per run: the least compute (FLOPs) on the frontier that reaches its ``score``."""
    frontier_c, frontier_s = compute_frontier(C, score)
    out = np.empty(len(C))
    for i, target in enumerate(score):
        reached = int(np.argmax(frontier_s >= target))  # first frontier point at or above
        if reached == 0 or frontier_s[reached - 1] == frontier_s[reached]:
            out[i] = frontier_c[reached]
            continue
        below, above = frontier_s[reached - 1], frontier_s[reached]
        share = (target - below) / (above - below)
        out[i] = np.exp(np.log(frontier_c[reached - 1]) + share * np.log(frontier_c[reached] / frontier_c[reached - 1]))
    return out
