"""Holm's step-down adjustment for the exploratory subgroup interaction tests.

With five interaction tests one small p-value arises by chance far more often than 5%; Holm
(1979) controls the family-wise error rate without assuming independence. Tests that could not
be computed (``None``/NaN) are left out of the family and stay missing.
"""

from __future__ import annotations

import numpy as np


def holm(p: list[float | None] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values in the input order (NaN where the input is missing)."""
    raw = np.array([np.nan if v is None else float(v) for v in p], dtype=float)
    out = np.full(len(raw), np.nan)
    ok = np.flatnonzero(np.isfinite(raw))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(raw[ok], kind="stable")]
    stepped = np.maximum.accumulate((m - np.arange(m)) * raw[order])
    out[order] = np.minimum(stepped, 1.0)
    return out
