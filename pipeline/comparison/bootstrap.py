"""IP-weighted Kaplan–Meier curves with a bootstrap that re-fits the propensity model.

Why a bootstrap: Greenwood-type bands computed on weighted counts ignore both the
weights' variability and the estimation of the propensity score and are far too narrow
(REFERENCE_RESULTS: SE 0.0098 instead of about 0.02 in NHEFS). Here every resample
re-estimates the propensity model and the weights, then the weighted KM curves.

Speed: a resample with replacement is represented by frequency weights (how often each
row was drawn), so the rows are sorted by time once and every resample is a weighted
logistic fit (a few Newton steps in numpy) plus cumulative sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .logistic import logit_newton
from .propensity import DesignSpec, fit_propensity
from .weighting import Estimand, ipw_weights

__all__ = ["km_from_codes", "km_from_sums", "weighted_km_at", "weighted_km_bootstrap"]


def weighted_km_at(
    time: np.ndarray,
    event: np.ndarray,
    times: Sequence[float] | np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted Kaplan–Meier survival evaluated at `times` (right-continuous step function).

    At each distinct event time t: d = sum of weights of events at t, n = sum of weights
    of rows with time >= t; S(t) = prod(1 - d/n). Rows censored at t count as at risk at t.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    w = np.ones_like(time) if weights is None else np.asarray(weights, dtype=float)
    uniq, code = np.unique(time, return_inverse=True)
    return km_from_codes(uniq, code, event, w, np.asarray(times, dtype=float))


def km_from_codes(
    uniq: np.ndarray, code: np.ndarray, event: np.ndarray, w: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """`weighted_km_at` with the distinct times (`uniq`) and each row's code into them found
    once by the caller (``np.unique(time, return_inverse=True)``): a bootstrap re-uses them
    for every resample instead of sorting the times again."""
    m = len(uniq)
    d = np.bincount(code, weights=w * event, minlength=m)
    tot = np.bincount(code, weights=w, minlength=m)
    return km_from_sums(uniq, d, tot, times)


def km_from_sums(uniq: np.ndarray, d: np.ndarray, tot: np.ndarray, times: np.ndarray
                 ) -> np.ndarray:
    """`weighted_km_at` from the weighted events (`d`) and rows (`tot`) ending at each distinct
    time `uniq` (ascending), e.g. sums a bootstrap also fits a Cox model from."""
    at_risk = np.cumsum(tot[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(at_risk > 0, d / at_risk, 0.0)
    surv = np.cumprod(1.0 - h)
    idx = np.searchsorted(uniq, times, side="right") - 1
    return np.where(idx >= 0, surv[np.maximum(idx, 0)], 1.0)


def weighted_km_bootstrap(
    df: pd.DataFrame,
    time_col: str,
    event_col: str,
    treated_col: str,
    covariates: Sequence[str],
    times: Sequence[float],
    n_boot: int = 200,
    estimand: Estimand = "ATE",
    seed: int = 0,
    *,
    categorical: Sequence[str] = (),
    squares: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
    stabilized: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """IP-weighted KM survival per group at `times`, with bootstrap SEs and percentile CIs.

    The propensity model (same arguments as `fit_propensity`) and the IP weights
    (`ipw_weights` with `estimand`, `stabilized`) are re-estimated in each of `n_boot`
    resamples of people. Resamples where the model does not converge (e.g. separation)
    are dropped and counted in ``result.attrs["n_failed"]``.

    Returns one row per time: surv_treated, surv_control, diff (treated - control), their
    bootstrap SEs (se_*) and percentile CIs (ci_low_*, ci_high_*).
    """
    times_a = np.asarray(times, dtype=float)
    model = fit_propensity(
        df, treated_col, covariates, categorical, squares=squares, reference=reference
    )
    spec: DesignSpec = model.spec
    time = df[time_col].to_numpy(dtype=float)
    if np.isnan(time).any():
        raise ValueError("missing follow-up times")
    order = np.argsort(time, kind="stable")
    time = time[order]
    event = df[event_col].to_numpy().astype(bool)[order]
    t = df[treated_col].to_numpy().astype(bool)[order]
    X = spec.matrix(df)[order]
    y = t.astype(float)
    uniq, code = np.unique(time, return_inverse=True)

    def curves(ps: np.ndarray, f: np.ndarray) -> np.ndarray:
        keep = f > 0
        w = np.zeros_like(ps)
        p1 = float(np.sum(f * t) / np.sum(f))  # the resample's treated share
        w[keep] = ipw_weights(ps[keep], t[keep], estimand, stabilized, p_treated=p1)
        ww = w * f
        s1 = km_from_codes(uniq, code, event, ww * t, times_a)
        s0 = km_from_codes(uniq, code, event, ww * ~t, times_a)
        return np.stack([s1, s0, s1 - s0])

    n = len(df)
    point = curves(model.scores[order], np.ones(n))
    rng = np.random.default_rng(seed)
    beta0 = model.params.to_numpy()
    boots = np.full((n_boot, 3, len(times_a)), np.nan)
    failed = 0
    for b in range(n_boot):
        f = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        if not (0 < np.sum(f * y) < np.sum(f)):
            failed += 1
            continue
        beta, ok = logit_newton(X, y, f, beta0)
        ps = 1.0 / (1.0 + np.exp(-(X @ beta)))
        if not ok or np.any((ps[f > 0] < 1e-12) | (ps[f > 0] > 1 - 1e-12)):
            failed += 1
            continue
        boots[b] = curves(ps, f)
    good = boots[~np.isnan(boots).any(axis=(1, 2))]
    nan = np.full(point.shape, np.nan)
    lo = np.quantile(good, alpha / 2, axis=0) if len(good) else nan
    hi = np.quantile(good, 1 - alpha / 2, axis=0) if len(good) else nan
    se = np.std(good, axis=0, ddof=1) if len(good) > 1 else nan
    out = pd.DataFrame({"time": times_a})
    for i, name in enumerate(("treated", "control", "diff")):
        col = f"surv_{name}" if name != "diff" else "diff"
        out[col] = point[i]
        out[f"se_{name}"] = se[i]
        out[f"ci_low_{name}"] = lo[i]
        out[f"ci_high_{name}"] = hi[i]
    out.attrs.update({"n_boot": n_boot, "n_failed": failed, "estimand": estimand, "alpha": alpha})
    return out
