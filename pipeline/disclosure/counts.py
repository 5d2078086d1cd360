"""Primary suppression, rounding and formatting of single counts and of rates built from them.

Rates are computed from the true (unrounded) counts. When rounding is on, a rate printed with
many decimals next to a rounded denominator can narrow the unrounded numerator: keep
``decimals`` small.
"""

from __future__ import annotations

import numbers
from typing import TypeVar

import numpy as np
import pandas as pd

from pipeline.disclosure.policy import DisclosurePolicy

IntOrArray = TypeVar("IntOrArray", int, np.ndarray)


def _as_count(n: object, what: str = "count") -> int:
    """Return ``n`` as a Python int, rejecting bools, NaN, negatives and non-integers."""
    if isinstance(n, bool | np.bool_) or not isinstance(n, numbers.Real):
        raise TypeError(f"{what} must be a non-negative integer, got {n!r}")
    if not np.isfinite(n) or n != int(n) or n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {n!r}")
    return int(n)


def suppression_mask(counts: np.ndarray, policy: DisclosurePolicy) -> np.ndarray:
    """Vectorised primary-suppression rule: True where a count is below the threshold."""
    counts = np.asarray(counts)
    low = 0 if policy.suppress_zeros else 1
    return (counts >= low) & (counts < policy.threshold)


def round_to_base(counts: IntOrArray, policy: DisclosurePolicy) -> IntOrArray:
    """Round int(s) to the nearest multiple of ``policy.rounding_base`` (halves up); None: no-op."""
    base = policy.rounding_base
    if base is None:
        return counts
    return (counts + base // 2) // base * base


def is_suppressed(n: int, policy: DisclosurePolicy) -> bool:
    """True when the count ``n`` must not be published (primary suppression)."""
    return bool(suppression_mask(np.asarray(_as_count(n)), policy))


def publish_count(n: int, policy: DisclosurePolicy) -> str:
    """Format one count for publication: suppressed label, else rounded with thousands commas."""
    value = _as_count(n)
    if is_suppressed(value, policy):
        return policy.suppressed_label
    return f"{round_to_base(value, policy):,}"


def publish_counts(
    counts: pd.Series | pd.DataFrame, policy: DisclosurePolicy
) -> pd.Series | pd.DataFrame:
    """Apply :func:`publish_count` to every element (e.g. a numbers-at-risk table); same shape."""
    if isinstance(counts, pd.DataFrame):
        return counts.apply(lambda col: publish_counts(col, policy))
    if not isinstance(counts, pd.Series):
        raise TypeError(f"expected a pandas Series or DataFrame, got {type(counts).__name__}")
    return pd.Series(
        [publish_count(v, policy) for v in counts.to_numpy()],
        index=counts.index,
        name=counts.name,
        dtype=object,
    )


def protect_rate(
    numerator: int,
    denominator: int,
    policy: DisclosurePolicy,
    per: float = 100,
    decimals: int = 1,
    proportion: bool = True,
) -> str:
    """Format ``numerator/denominator*per``; the withheld label if any count involved is suppressed.

    With ``proportion`` the numerator is a subset of the denominator, so the implied count
    ``denominator - numerator`` (e.g. 95.0% of 100 reveals 5) is checked as well.
    """
    num = _as_count(numerator, "numerator")
    den = _as_count(denominator, "denominator")
    if proportion and num > den:
        raise ValueError(
            f"numerator {num} exceeds denominator {den}; pass proportion=False for a rate"
        )
    involved = [num, den] + ([den - num] if proportion else [])
    if den == 0 or any(is_suppressed(c, policy) for c in involved):
        return policy.withheld_label
    return f"{num / den * per:,.{decimals}f}"
