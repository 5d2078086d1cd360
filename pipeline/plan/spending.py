"""Error spending and two-sided group sequential boundaries (Lan & DeMets 1983).

The evaluation is re-run on every monthly extract: each run is another look at accumulating
data. A fixed 95% interval at every look would declare an effect under no true effect far more
often than 5% (about 10% over 24 looks), so the verdict uses boundaries that spend the
two-sided error rate as information accrues.

Conventions (those of gsDesign ``test.type = 2`` and rpact): a two-sided level ``alpha`` is
spent symmetrically, ``alpha / 2`` per side, with the one-sided spending function at level
``alpha / 2``; information fractions ``t`` come from the events observed over the events the
plan expects. Boundaries are found by the recursive numerical integration of Armitage,
McPherson and Rowe (Jennison & Turnbull 2000, ch. 19) over the Brownian motion
``W(t) = Z(t) sqrt(t)``, with both sides of the continuation region in the recursion. For
equally spaced looks they reproduce the published Lan–DeMets O'Brien–Fleming values (K = 3:
3.7103, 2.5114, 1.9930; K = 5: 4.8769, 3.3569, 2.6803, 2.2898, 2.0310) to 1e-3
(``tests/plan/test_spending.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

SPENDING_FUNCTIONS = ("obrien_fleming", "pocock")
_MAX_Z = 40.0  # a boundary this large is never crossed (no error left to spend)


def spent(t: np.ndarray | float, alpha: float, kind: str = "obrien_fleming") -> np.ndarray:
    """Cumulative two-sided error spent by information fraction ``t`` (0 at 0, alpha at 1).

    ``obrien_fleming``: per side 2(1 - Phi(z_{1-alpha/4} / sqrt(t))) (gsDesign sfLDOF at
    alpha/2); ``pocock``: per side (alpha/2) log(1 + (e - 1) t) (Lan–DeMets Pocock type).
    """
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    half = alpha / 2
    if kind == "obrien_fleming":
        with np.errstate(divide="ignore"):
            z = stats.norm.isf(half / 2) / np.sqrt(t)
        side = np.where(t > 0, 2 * stats.norm.sf(z), 0.0)
    elif kind == "pocock":
        side = half * np.log1p((np.e - 1) * t)
    else:
        raise ValueError(f"unknown spending function {kind!r}; choose from "
                         f"{', '.join(SPENDING_FUNCTIONS)}")
    return 2 * side


@dataclass(frozen=True)
class Boundaries:
    """Two-sided boundaries on the Z scale at each look; ``np.inf`` where none is left."""

    t: np.ndarray          # information fractions of the looks (increasing)
    z: np.ndarray          # |Z| at or beyond which the look crosses
    alpha_spent: np.ndarray  # cumulative two-sided error spent by each look

    @property
    def nominal_p(self) -> np.ndarray:
        """The two-sided nominal p-value a look must reach to cross."""
        return 2 * stats.norm.sf(self.z)


_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _grid(half_width: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Simpson nodes and weights on [-half_width, half_width] with spacing at most ``step``."""
    m = int(np.ceil(2 * half_width / step / 2)) * 2 + 1
    m = int(np.clip(m, 201, 2001)) | 1
    x = np.linspace(-half_width, half_width, m)
    h = x[1] - x[0]
    w = np.full(m, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return x, w * h / 3


class _Recursion:
    """Sub-density of W(t) = Z sqrt(t) on the continuation region after each look."""

    def __init__(self, drift: float = 0.0) -> None:
        self.drift = drift  # E[W(t)] = drift * t (drift = theta * sqrt(I_max))
        self.t_prev = 0.0
        self.x: np.ndarray | None = None  # nodes (None before the first look: W(0) = 0)
        self.f: np.ndarray | None = None  # density times weights at the nodes

    def _mass_from(self, t: float) -> tuple[np.ndarray, np.ndarray, float, float]:
        delta = t - self.t_prev
        if self.x is None:
            return np.zeros(1), np.ones(1), delta, self.drift * delta
        return self.x, self.f, delta, self.drift * delta

    def exit(self, t: float, c: float) -> tuple[float, float]:
        """P(still continuing, then W(t) >= c sqrt t) and P(..., W(t) <= -c sqrt t)."""
        x, f, delta, mu = self._mass_from(t)
        sd = np.sqrt(delta)
        b = c * np.sqrt(t)
        upper = float(f @ special.ndtr(-(b - x - mu) / sd))  # normal sf, without the
        lower = float(f @ special.ndtr((-b - x - mu) / sd))  # overhead of stats.norm
        return upper, lower

    def advance(self, t: float, c: float) -> None:
        """Move the sub-density to look ``t`` restricted to |Z| < c."""
        x, f, delta, mu = self._mass_from(t)
        sd = np.sqrt(delta)
        b = min(c, 12.0) * np.sqrt(t)
        nodes, weights = _grid(b, sd / 8)
        u = (nodes[:, None] - x[None, :] - mu) / sd
        kernel = np.exp(-0.5 * u * u) * (_INV_SQRT_2PI / sd)  # normal pdf, vectorised
        self.x, self.f, self.t_prev = nodes, (kernel @ f) * weights, t


def _increasing(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or len(t) == 0 or (t <= 0).any() or (t > 1 + 1e-12).any() \
            or (np.diff(t) <= 0).any():
        raise ValueError("information fractions must be increasing, in (0, 1]")
    return t


def boundaries(t: np.ndarray, alpha: float = 0.05, kind: str = "obrien_fleming"
               ) -> Boundaries:
    """Symmetric two-sided boundaries for looks at information fractions ``t``.

    At each look the boundary ``c`` solves P(no earlier crossing, |Z| >= c) = increment of
    the spending function; a look with nothing left to spend gets ``np.inf``.
    """
    t = _increasing(t)
    cum = spent(t, alpha, kind)
    rec = _Recursion()
    z = np.empty(len(t))
    used = 0.0
    for k, tk in enumerate(t):
        target = cum[k] - used
        if target <= 1e-15:
            z[k] = np.inf
        else:
            def excess(c: float, tk: float = tk, target: float = target) -> float:
                return sum(rec.exit(tk, c)) - target
            z[k] = optimize.brentq(excess, 1e-6, _MAX_Z, xtol=1e-10) \
                if excess(_MAX_Z) < 0 < excess(1e-6) else np.inf
            used += sum(rec.exit(tk, z[k])) if np.isfinite(z[k]) else 0.0
        rec.advance(tk, z[k])
    return Boundaries(t=t, z=z, alpha_spent=cum)


def crossing_probabilities(t: np.ndarray, z: np.ndarray, drift: float = 0.0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Probability of first crossing the upper and the lower boundary at each look.

    ``drift`` is theta * sqrt(I_max): Z at fraction t has mean drift * sqrt(t). With
    ``drift = 0`` the sums are the error actually spent.
    """
    t = _increasing(t)
    rec = _Recursion(drift)
    up, lo = np.zeros(len(t)), np.zeros(len(t))
    for k, (tk, ck) in enumerate(zip(t, z, strict=True)):
        if np.isfinite(ck):
            up[k], lo[k] = rec.exit(tk, ck)
        rec.advance(tk, ck)
    return up, lo
