"""Aalen-Johansen cumulative incidence for competing risks, with exact handling of ties."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import ArrayLike, as_float, as_weights, survival_ci


def _aj_table(
    time: np.ndarray, status: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times, codes of the causes, weighted n at risk, events by cause, inverse index."""
    utime, inv = np.unique(time, return_inverse=True)
    causes = np.unique(status[status != 0])
    m = utime.size
    n_total = np.bincount(inv, weights=weights, minlength=m)
    n_risk = np.cumsum(n_total[::-1])[::-1]
    cause_idx = np.searchsorted(causes, status)
    is_event = status != 0
    d = np.zeros((m, causes.size))
    np.add.at(d, (inv[is_event], cause_idx[is_event]), weights[is_event])
    return utime, causes, n_risk, d, inv


def _state_probabilities(n_risk: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event-free probability S(t_l-) before each time and cumulative incidences after it."""
    d_all = d.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_all = np.where(n_risk > 0, d_all / n_risk, 0.0)
        h_cause = np.where(n_risk[:, None] > 0, d / n_risk[:, None], 0.0)
    surv = np.cumprod(1.0 - h_all)
    surv_prev = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(surv_prev[:, None] * h_cause, axis=0)
    return surv_prev, cif


def cumulative_incidence(
    time: ArrayLike,
    status: ArrayLike,
    cause: int | float,
    conf_level: float = 0.95,
    conf_type: str = "log",
    weights: ArrayLike | None = None,
) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of `cause`, other non-zero statuses competing.

    status 0 = censored. A cause with no event has incidence 0 at every time (no error), so
    that an arm or outcome family without events still gets its curve. Tied times are
    handled exactly (no jitter). std_err is the infinitesimal-jackknife SE that R's survfit
    uses for multi-state curves, computed in O(n) by cumulative sums; the default conf_type
    "log" is R's multi-state default.
    Returns one row per distinct time plus a leading time-0 row (cif = 0).
    """
    t = as_float(time, "time")
    s = as_float(status, "status")
    if s.size != t.size:
        raise ValueError("status must have the same length as time")
    w = as_weights(weights, t.size)
    utime, causes, n_risk, d, inv = _aj_table(t, s, w)
    if cause not in set(causes.tolist()):
        # no event of this cause: its cumulative incidence is 0 throughout, exactly
        zeros = np.zeros(utime.size + 1)
        return pd.DataFrame({"time": np.concatenate([[0.0], utime]), "cif": zeros,
                             "std_err": zeros, "lower": zeros, "upper": zeros})
    k = int(np.searchsorted(causes, cause))
    surv_prev, cif_all = _state_probabilities(n_risk, d)
    cif = cif_all[:, k]
    d_all = d.sum(axis=1)

    # Influence of unit i on F(t) = alpha_i(t) - F(t) * beta_i(t) (derivative w.r.t. its weight):
    #   alpha_i(t) = [T_i <= t] delta_i (a_l [cause_i = k] + F_l b_l) - A(min(t, T_i))
    #   beta_i(t)  = [T_i <= t] delta_i b_l - B(min(t, T_i))
    # with a_l = S(t_l-)/n_l, b_l = 1/(n_l - d_l), A, B cumulative sums of the Y-terms.
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n_risk > 0, surv_prev / n_risk, 0.0)
        b = np.where(n_risk > d_all, 1.0 / (n_risk - d_all), 0.0)
        h_all = np.where(n_risk > 0, d_all / n_risk, 0.0)
        h_k = np.where(n_risk > 0, d[:, k] / n_risk, 0.0)
    big_a = np.cumsum(a * h_k + cif * b * h_all)
    big_b = np.cumsum(b * h_all)
    event = s != 0
    own = s == cause
    alpha = event * (a[inv] * own + cif[inv] * b[inv]) - big_a[inv]
    beta = event * b[inv] - big_b[inv]
    m = utime.size
    w2 = w**2
    s_aa = np.cumsum(np.bincount(inv, weights=w2 * alpha**2, minlength=m))
    s_ab = np.cumsum(np.bincount(inv, weights=w2 * alpha * beta, minlength=m))
    s_bb = np.cumsum(np.bincount(inv, weights=w2 * beta**2, minlength=m))
    n_later = w2.sum() - np.cumsum(np.bincount(inv, weights=w2, minlength=m))
    var = s_aa - 2 * cif * s_ab + cif**2 * s_bb + n_later * (big_a - cif * big_b) ** 2
    se = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.where(cif > 0, se / cif, 0.0)
    lower, upper = survival_ci(cif, se_log, conf_level, conf_type)
    lower = np.where(cif == 0, 0.0, lower)
    upper = np.where(cif == 0, 0.0, upper)
    return pd.DataFrame(
        {
            "time": np.concatenate([[0.0], utime]),
            "cif": np.concatenate([[0.0], cif]),
            "std_err": np.concatenate([[0.0], se]),
            "lower": np.concatenate([[0.0], lower]),
            "upper": np.concatenate([[0.0], upper]),
        }
    )


def expected_time_in_states(
    time: ArrayLike,
    status: ArrayLike,
    tau: float,
    scale: float = 1.0,
    weights: ArrayLike | None = None,
) -> dict[int | float, float]:
    """Restricted mean time spent in each competing-risks state over [0, tau].

    Keys: 0 for the initial (event-free) state and each cause code for its absorbing state;
    values are in time units divided by `scale` and sum to tau / scale, as R's
    print(survfit(Surv(time, factor(status)) ~ 1), rmean=tau, scale=scale).
    """
    t = as_float(time, "time")
    s = as_float(status, "status")
    w = as_weights(weights, t.size)
    utime, causes, n_risk, d, _ = _aj_table(t, s, w)
    surv_prev, cif = _state_probabilities(n_risk, d)
    surv_after = surv_prev * (1.0 - np.where(n_risk > 0, d.sum(axis=1) / n_risk, 0.0))
    keep = utime <= tau
    knots = np.concatenate([[0.0], utime[keep], [tau]])
    width = np.diff(knots)
    state0 = np.concatenate([[1.0], surv_after[keep]])
    out: dict[int | float, float] = {0: float(width @ state0) / scale}
    for j, c in enumerate(causes):
        level = np.concatenate([[0.0], cif[keep, j]])
        key = int(c) if float(c).is_integer() else float(c)
        out[key] = float(width @ level) / scale
    return out
