"""Power and precision of the monitored evaluation, stated for an inconclusive result.

Information for a log hazard ratio is about ``events * r / (1 + r)^2`` (Schoenfeld 1981; a
quarter of the events with 1:1 matching, ``r`` = comparison per treated). With the plan's
boundaries, the chance of crossing the reduction boundary when the true hazard ratio is
``hr`` follows from the same recursion as the boundaries (``spending.crossing_probabilities``
with a drift). With one look these reduce to Schoenfeld's fixed-design formulas, which the
tests check, as they check the sequential values against a Monte Carlo of the looks.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import optimize, stats

from pipeline.plan.spending import boundaries, crossing_probabilities


def information(events: float, ratio: float = 1.0) -> float:
    """Fisher information of the log HR from ``events`` with allocation ``ratio``."""
    return float(events) * ratio / (1.0 + ratio) ** 2


def sequential_power(t: np.ndarray, hr: float, max_events: float, alpha: float = 0.05,
                     spending: str = "obrien_fleming", ratio: float = 1.0) -> float:
    """Chance of crossing the reduction boundary at one of looks ``t`` if the true HR is ``hr``
    and information fraction 1 means ``max_events`` events."""
    b = _boundaries(tuple(np.round(np.asarray(t, dtype=float), 12)), float(alpha), spending)
    drift = abs(np.log(hr)) * np.sqrt(information(max_events, ratio))
    up, _ = crossing_probabilities(b.t, b.z, drift)  # symmetric: reduction = drift upwards
    return float(up.sum())


@functools.lru_cache(maxsize=64)
def _boundaries(t: tuple[float, ...], alpha: float, spending: str):
    """The plan's boundaries at looks ``t``: they do not depend on the hazard ratio, so a root
    search over the HR (``detectable_hr``) computes them once, not at every step."""
    return boundaries(np.asarray(t), alpha, spending)


def _equal_looks(looks: int) -> np.ndarray:
    return np.arange(1, looks + 1) / looks


def required_events(hr: float, power: float = 0.8, alpha: float = 0.05, looks: int = 1,
                    spending: str = "obrien_fleming", ratio: float = 1.0) -> float:
    """Events needed for ``power`` at ``hr`` with ``looks`` equally spaced looks (not rounded).

    One look: 4 (z_{1-alpha/2} + z_power)^2 / log(hr)^2 with 1:1 allocation (Schoenfeld).
    """
    fixed = (stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) ** 2 / np.log(hr) ** 2 \
        / information(1.0, ratio)
    if looks == 1:
        return float(fixed)
    t = _equal_looks(looks)
    return float(optimize.brentq(
        lambda d: sequential_power(t, hr, d, alpha, spending, ratio) - power,
        fixed, 2 * fixed, xtol=1e-6))


def detectable_hr(max_events: float, power: float = 0.8, alpha: float = 0.05, looks: int = 1,
                  spending: str = "obrien_fleming", ratio: float = 1.0) -> float:
    """The protective HR detected with ``power`` when the final look has ``max_events``."""
    if max_events <= 0:
        return float("nan")
    t = _equal_looks(looks)
    root = optimize.brentq(
        lambda log_hr: sequential_power(t, np.exp(log_hr), max_events, alpha, spending, ratio)
        - power, np.log(0.999), np.log(0.01), xtol=1e-9)
    return float(np.exp(root))


def fixed_power(events: float, hr: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power of one analysis now (no monitoring) to show ``hr``: Phi(|log hr| sqrt(I) - z)."""
    return float(stats.norm.cdf(abs(np.log(hr)) * np.sqrt(information(events, ratio))
                                - stats.norm.isf(alpha / 2)))
