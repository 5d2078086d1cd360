"""Small shared helpers: input coercion and confidence-interval transforms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ArrayLike = np.ndarray | pd.Series | Sequence[float]

CONF_TYPES = ("log-log", "log", "plain")


def as_float(x: ArrayLike, name: str) -> np.ndarray:
    """Return `x` as a 1-d float array, rejecting missing values."""
    arr = np.asarray(x, dtype=float).ravel()
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains missing values")
    return arr


def as_event(x: ArrayLike, n: int) -> np.ndarray:
    """Return an event indicator as a 0/1 float array of length `n`."""
    arr = as_float(x, "event")
    if arr.shape[0] != n:
        raise ValueError("event must have the same length as time")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("event must be coded 0 (censored) / 1 (event)")
    return arr


def as_weights(w: ArrayLike | None, n: int) -> np.ndarray:
    """Return case weights (ones when `w` is None), checking length and sign."""
    if w is None:
        return np.ones(n)
    arr = as_float(w, "weights")
    if arr.shape[0] != n:
        raise ValueError("weights must have the same length as time")
    if (arr < 0).any():
        raise ValueError("weights must be non-negative")
    return arr


def z_value(conf_level: float) -> float:
    """Two-sided standard-normal quantile for a `conf_level` interval."""
    if not 0.0 < conf_level < 1.0:
        raise ValueError("conf_level must be in (0, 1)")
    return float(stats.norm.ppf(1.0 - (1.0 - conf_level) / 2.0))


def survival_ci(
    p: np.ndarray, se_log: np.ndarray, conf_level: float, conf_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CI for a probability `p` given the SE of log(p), as R's survfit_confint.

    Rows where p == 1 (or the SE is 0) get the degenerate interval [p, p] rather than
    R's NA; rows with p == 0 get NaN for the log and log-log types (as R).
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}")
    z = z_value(conf_level)
    p = np.asarray(p, dtype=float)
    se = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * se * p
            lower = np.maximum(p - half, 0.0)
            upper = np.minimum(p + half, 1.0)
        elif conf_type == "log":
            lower = np.exp(np.log(p) - z * se)
            upper = np.minimum(np.exp(np.log(p) + z * se), 1.0)
        else:
            logp = np.log(p)
            shift = z * se / logp
            loglog = np.log(-logp)
            lower = np.exp(-np.exp(loglog - shift))
            upper = np.exp(-np.exp(loglog + shift))
        degenerate = (se == 0) & (p > 0)
        lower = np.where(degenerate, p, lower)
        upper = np.where(degenerate, p, upper)
        if conf_type != "plain":
            lower = np.where(p == 0, np.nan, lower)
            upper = np.where(p == 0, np.nan, upper)
    return lower, upper
