"""Kaplan-Meier estimator with Greenwood variance and R-compatible confidence bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import ArrayLike, as_event, as_float, as_weights, survival_ci

KM_COLUMNS = ["time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper"]


def event_table(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times with (weighted) number at risk, events and censorings at each.

    Shared by the KM, RMST and log-rank code; O(n log n) via one sort and bincounts.
    """
    utime, inv = np.unique(time, return_inverse=True)
    n_event = np.bincount(inv, weights=weights * event, minlength=utime.size)
    n_total = np.bincount(inv, weights=weights, minlength=utime.size)
    n_censor = n_total - n_event
    n_risk = np.cumsum(n_total[::-1])[::-1]
    return utime, n_risk, n_event, n_censor


def truncated_event_table(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray, entry: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`event_table` for rows at risk on (entry, time]: the number at risk at t drops the
    rows that enter at or after t. O(n log n): one more sort and a searchsorted."""
    utime, n_risk, n_event, n_censor = event_table(time, event, weights)
    order = np.argsort(entry, kind="stable")
    entered = np.concatenate([[0.0], np.cumsum(weights[order])])
    late = entered[-1] - entered[np.searchsorted(entry[order], utime, side="left")]
    return utime, np.maximum(n_risk - late, 0.0), n_event, n_censor


def greenwood_terms(n_risk: np.ndarray, n_event: np.ndarray) -> np.ndarray:
    """Per-time Greenwood increments d / (n (n - d)); +inf where everyone at risk fails."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    return np.where((n_event > 0) & (n_risk <= n_event), np.inf, term)


def kaplan_meier(
    time: ArrayLike,
    event: ArrayLike,
    weights: ArrayLike | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    entry: ArrayLike | None = None,
) -> pd.DataFrame:
    """Kaplan-Meier survival curve with Greenwood SE and pointwise CI (R survfit).

    One row per distinct observed time plus a leading time-0 row (surv = 1). `std_err` is
    the SE of surv (as R's summary.survfit); the band uses the SE of log S, with
    conf_type "log-log" (R conf.type="log-log"), "log" (R's default) or "plain".
    Weights give weighted counts and a weighted point estimate; the Greenwood band on
    weighted counts is NOT a valid interval for estimated (e.g. inverse-probability)
    weights -- use a bootstrap for those.

    `entry` (left truncation / counting-process rows, as R's Surv(start, stop, event)): a
    row is at risk on (entry, time], so n_risk can rise over time, and the curve is the
    survival conditional on being at risk just after the earliest entry. Entry must be
    non-negative and below time. `n_censor` then counts every row ending without an event,
    including rows that end at a split point and continue in another row; the time-0 row's
    n_risk counts the rows entering at 0. (lifelines counts a row entering at t as at risk
    at t; the two agree when no entry time equals an event time.)
    """
    t = as_float(time, "time")
    if (t < 0).any():
        raise ValueError("time must be non-negative")
    d = as_event(event, t.size)
    w = as_weights(weights, t.size)
    if entry is None:
        utime, n_risk, n_event, n_censor = event_table(t, d, w)
        n_start = w.sum()
    else:
        e = as_float(entry, "entry")
        if e.shape[0] != t.size:
            raise ValueError("entry must have the same length as time")
        if (e < 0).any() or not (e < t).all():
            raise ValueError("entry must be non-negative and below time (at risk on "
                             "(entry, time])")
        utime, n_risk, n_event, n_censor = truncated_event_table(t, d, w, e)
        n_start = w[e <= 0].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n_risk > 0, n_event / n_risk, 0.0)
    surv = np.cumprod(1.0 - hazard)
    surv = np.where(surv < 0, 0.0, surv)
    var_log = np.cumsum(greenwood_terms(n_risk, n_event))
    se_log = np.sqrt(var_log)
    with np.errstate(invalid="ignore"):
        std_err = np.where(surv > 0, surv * se_log, np.nan)
    lower, upper = survival_ci(surv, se_log, conf_level, conf_type)
    out = pd.DataFrame(
        {
            "time": np.concatenate([[0.0], utime]),
            "n_risk": np.concatenate([[n_start], n_risk]),
            "n_event": np.concatenate([[0.0], n_event]),
            "n_censor": np.concatenate([[0.0], n_censor]),
            "surv": np.concatenate([[1.0], surv]),
            "std_err": np.concatenate([[0.0], std_err]),
            "lower": np.concatenate([[1.0], lower]),
            "upper": np.concatenate([[1.0], upper]),
        },
        columns=KM_COLUMNS,
    )
    out.attrs["conf_level"] = conf_level
    out.attrs["conf_type"] = conf_type
    return out


def survival_at(km: pd.DataFrame, t: float) -> tuple[float, float, float]:
    """(surv, lower, upper) of a `kaplan_meier` table at time t (right-continuous step).

    NaN beyond the last observed time, where the curve is not estimated.
    """
    times = km["time"].to_numpy()
    if t > times[-1] or t < times[0]:
        return (np.nan, np.nan, np.nan)
    i = int(np.searchsorted(times, t, side="right")) - 1
    row = km.iloc[i]
    return (float(row["surv"]), float(row["lower"]), float(row["upper"]))


def _first_below_half(y: np.ndarray, x: np.ndarray) -> float:
    """R's survmean `minmin`: first x with y < 0.5 (midpoint rule if y is exactly 0.5)."""
    tol = np.sqrt(np.finfo(float).eps)
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return np.nan
    xk, yk = x[keep], y[keep]
    if abs(yk[0] - 0.5) < tol and (yk < yk[0]).any():
        return float((xk[0] + xk[np.argmax(yk < yk[0])]) / 2.0)
    return float(xk[0])


def median_survival(km: pd.DataFrame) -> tuple[float, float, float]:
    """Median survival and its CI from where the curve / band cross 0.5 (as R print.survfit).

    Each element is NaN when that curve never reaches 0.5.
    """
    body = km.iloc[1:] if len(km) > 1 else km
    x = body["time"].to_numpy()
    return (
        _first_below_half(body["surv"].to_numpy(), x),
        _first_below_half(body["lower"].to_numpy(), x),
        _first_below_half(body["upper"].to_numpy(), x),
    )
