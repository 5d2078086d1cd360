"""Log-rank test for two or more groups (R survdiff, rho = 0)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._util import ArrayLike, as_event, as_float


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank chi-square test; observed/expected events are indexed by group label."""

    chi2: float
    df: int
    p: float
    observed: pd.Series
    expected: pd.Series
    n: pd.Series


def logrank_test(time: ArrayLike, event: ArrayLike, group: ArrayLike) -> LogRankResult:
    """Log-rank test of equal hazards across groups, matching R's survdiff.

    Uses the hypergeometric variance at each distinct event time; chi2 has (groups - 1) df.
    Raises ValueError when nobody has an event (R's survdiff then has no test either).
    """
    t = as_float(time, "time")
    d = as_event(event, t.size)
    g = pd.Series(np.asarray(group).ravel())
    if g.size != t.size:
        raise ValueError("group must have the same length as time")
    if g.isna().any():
        raise ValueError("group contains missing values")
    codes, labels = pd.factorize(g, sort=True)
    k = labels.size
    if k < 2:
        raise ValueError("logrank_test needs at least two groups")
    if d.sum() == 0:
        raise ValueError("no events: the log-rank test is not defined")
    utime, tinv = np.unique(t, return_inverse=True)
    m = utime.size
    cell = tinv * k + codes
    at_time = np.bincount(cell, minlength=m * k).reshape(m, k).astype(float)
    dead = np.bincount(cell, weights=d, minlength=m * k).reshape(m, k)
    n_risk_g = np.cumsum(at_time[::-1], axis=0)[::-1]
    n_risk = n_risk_g.sum(axis=1)
    deaths = dead.sum(axis=1)
    use = deaths > 0
    n_risk_g, n_risk, deaths, dead = n_risk_g[use], n_risk[use], deaths[use], dead[use]
    frac = n_risk_g / n_risk[:, None]
    observed = dead.sum(axis=0)
    expected = (deaths[:, None] * frac).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(n_risk > 1, deaths * (n_risk - deaths) / (n_risk - 1.0), 0.0)
    var = np.diag((c[:, None] * frac).sum(axis=0)) - (frac * c[:, None]).T @ frac
    diff = observed - expected
    # R uses a generalised inverse over all groups; dropping one group is equivalent.
    keep = np.flatnonzero(expected > 0)[:-1]
    if keep.size == 0:
        raise ValueError("events occur only while a single group is at risk: the log-rank "
                         "test is not defined")
    chi2 = float(diff[keep] @ np.linalg.solve(var[np.ix_(keep, keep)], diff[keep]))
    df = int(keep.size)
    return LogRankResult(
        chi2=chi2,
        df=df,
        p=float(stats.chi2.sf(chi2, df)),
        observed=pd.Series(observed, index=labels, name="observed"),
        expected=pd.Series(expected, index=labels, name="expected"),
        n=pd.Series(np.bincount(codes, minlength=k), index=labels, name="n"),
    )
