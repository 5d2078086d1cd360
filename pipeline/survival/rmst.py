"""Restricted mean survival time (RMST) with the Greenwood-type SE used by R and survRM2."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._util import ArrayLike, as_event, as_float, z_value
from .kaplan_meier import event_table, greenwood_terms


def rmst(time: ArrayLike, event: ArrayLike, tau: float) -> tuple[float, float]:
    """Area under the Kaplan-Meier curve on [0, tau] and its standard error.

    Var = sum over event times t_j <= tau of A_j^2 d_j / (n_j (n_j - d_j)), with A_j the area
    under the curve from t_j to tau (R print.survfit(rmean=tau), survRM2). The curve is
    carried flat past the last observation if tau exceeds it, as R does.
    """
    t = as_float(time, "time")
    d = as_event(event, t.size)
    if tau <= 0:
        raise ValueError("tau must be positive")
    utime, n_risk, n_event, _ = event_table(t, d, np.ones(t.size))
    keep = utime <= tau
    utime, n_risk, n_event = utime[keep], n_risk[keep], n_event[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - np.where(n_risk > 0, n_event / n_risk, 0.0))
    # knots 0 = s_0 < t_1 < ... < t_m <= tau; S is constant on [t_j, t_{j+1})
    knots = np.concatenate([[0.0], utime, [tau]])
    level = np.concatenate([[1.0], surv])
    areas = np.diff(knots) * level
    estimate = float(areas.sum())
    # area from t_j to tau, for each distinct time t_j
    tail = np.cumsum(areas[::-1])[::-1][1:]
    hh = greenwood_terms(n_risk, n_event)
    hh = np.where(np.isinf(hh), 0.0, hh)  # R: 0 when n == d (the curve is 0 afterwards)
    se = float(np.sqrt(np.sum(tail**2 * hh)))
    return estimate, se


def rmst_difference(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    tau: float,
    conf_level: float = 0.95,
) -> dict[str, float]:
    """RMST of group 1 minus group 0 (sorted labels if not 0/1), with normal-theory CI and p.

    Raises ValueError when ``tau`` lies beyond either group's last follow-up time (the curve
    would be extrapolated) or when nobody has an event before ``tau`` (both means equal tau
    with no variance: the difference has no standard error).
    """
    t = as_float(time, "time")
    d = as_event(event, t.size)
    g = pd.Series(np.asarray(group).ravel())
    codes, labels = pd.factorize(g, sort=True)
    if labels.size != 2 or (codes < 0).any():
        raise ValueError("group must have exactly two non-missing levels")
    for k in (0, 1):
        tk, dk = t[codes == k], d[codes == k]
        last = tk == tk.max()
        # beyond a group's last time its curve is known only if everyone left then failed
        if tau > tk.max() and not dk[last].all():
            raise ValueError("tau lies beyond a group's follow-up: the RMST would be "
                             "extrapolated")
    if not d[t <= tau].any():
        raise ValueError("no events before tau: the RMST difference has no variance")
    r0, s0 = rmst(t[codes == 0], d[codes == 0], tau)
    r1, s1 = rmst(t[codes == 1], d[codes == 1], tau)
    diff = r1 - r0
    se = float(np.hypot(s0, s1))
    z = z_value(conf_level)
    return {
        "rmst_0": r0,
        "se_0": s0,
        "rmst_1": r1,
        "se_1": s1,
        "diff": diff,
        "se": se,
        "lower": diff - z * se,
        "upper": diff + z * se,
        "p": float(2.0 * stats.norm.sf(abs(diff) / se)) if se > 0 else np.nan,
    }
