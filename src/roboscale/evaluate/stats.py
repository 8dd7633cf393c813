"""Success rates with honest intervals: the Wilson score interval for a binomial proportion."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054
"""Two-sided 95% standard-normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (low, high) for ``successes`` out of ``trials``.

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse
    to a point at 0 or ``trials`` successes, which is where small evaluations of
    robot policies usually land.
    """
    if trials < 1:
        raise ValueError(f"trials={trials}: a success rate needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes}: must be between 0 and trials={trials}")
    rate = successes / trials
    shrink = 1.0 + z**2 / trials
    centre = (rate + z**2 / (2 * trials)) / shrink
    half_width = z * math.sqrt(rate * (1.0 - rate) / trials + z**2 / (4 * trials**2)) / shrink
    # At 0 or ``trials`` successes the bound is exactly 0 or 1; round-off would leave it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == trials else min(1.0, centre + half_width)
    return low, high
