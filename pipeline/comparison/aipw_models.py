"""Nuisance models for the doubly robust survival curves in `adjusted_curves`.

Three working models, each fitted on the rows of one arm (or all rows for the propensity) with
the frame's base weights (sampling weights) as case weights:

- hazard models for the event and for censoring: a Cox model (Breslow partial likelihood, equal
  to `pipeline.survival.fit_cox(..., ties="breslow")` but a few milliseconds per fit, with the
  weighted Breslow baseline hazard) when there are covariates, the Kaplan-Meier estimator
  (a product limit of the Nelson-Aalen increments) when there are none;
- a logistic propensity model (Newton-Raphson, `logistic.py`, with the base weights as
  frequency weights).

Everything is vectorised over rows; a model is a set of jump times with baseline hazard
increments and one relative risk per row, so that survival at any time is a lookup.
Anything that makes a model not estimable raises ValueError with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .logistic import logit_newton

_PS_EDGE = 1e-6


@dataclass
class HazardModel:
    """Fitted hazard: baseline increments `dlam` at sorted `jumps`, relative risk `risk` per row.

    `product_limit` (no covariates) gives S(t) = prod(1 - dlam) as Kaplan-Meier does; otherwise
    S(t | x) = exp(-risk * Lambda0(t)) as Cox predictions in R (predictCox) are computed.
    """

    jumps: np.ndarray
    dlam: np.ndarray
    risk: np.ndarray
    product_limit: bool
    cum: np.ndarray = field(init=False, repr=False)  # Lambda0 after 0, 1, ... jumps
    prod: np.ndarray = field(init=False, repr=False)  # product limit after 0, 1, ... jumps

    def __post_init__(self) -> None:
        self.cum = np.concatenate([[0.0], np.cumsum(self.dlam)])
        self.prod = np.concatenate([[1.0], np.cumprod(1.0 - self.dlam)])

    def index(self, t: float | np.ndarray, before: bool = False) -> np.ndarray:
        """Number of jumps at or before t (strictly before t if `before`)."""
        return np.searchsorted(self.jumps, t, side="left" if before else "right")

    def survival(self, t: float, *, before: bool = False, rows: np.ndarray | None = None
                 ) -> np.ndarray:
        """Survival at t (or just before t) of every row, or of the given rows."""
        k = self.index(t, before)
        risk = self.risk if rows is None else self.risk[rows]
        if self.product_limit:
            return np.full(risk.size, self.prod[k])
        return np.exp(-risk * self.cum[k])

    def survival_rows(self, t: np.ndarray, *, before: bool = False) -> np.ndarray:
        """Survival of row i at its own time t[i] (or just before it)."""
        k = self.index(t, before)
        return self.prod[k] if self.product_limit else np.exp(-self.risk * self.cum[k])


def _design(frame: pd.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """Numeric covariate matrix; raises on missing or non-numeric values."""
    try:
        x = frame[list(covariates)].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"covariates must be numeric (dummy-code categories): {exc}") from exc
    if np.isnan(x).any():
        raise ValueError("missing values in covariates")
    return x


def cox_breslow(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    leave: np.ndarray | None = None,
    max_iter: int = 30,
    with_se: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Cox coefficients by Newton-Raphson on the weighted Breslow partial likelihood.

    A few milliseconds for thousands of rows (risk-set sums by reverse cumulative sums over
    the distinct times), so that simulations can refit the working models many times; with
    tied times it differs slightly from `pipeline.survival.fit_cox` (Efron), and it matches
    the Breslow baseline hazard used for the predictions. Rows with `leave` = 1 are out of
    the risk set at their own time (events leave before censorings at a tied time). Raises
    ValueError on a singular information matrix or an infinite coefficient (monotone
    likelihood). ``with_se`` also returns the model-based standard errors (inverse information).
    """
    ut, inv = np.unique(time, return_inverse=True)
    xc = x - np.average(x, axis=0, weights=weight)
    p, k = xc.shape[1], ut.size
    d = np.bincount(inv, weights=weight * event, minlength=k)
    m = d > 0
    xd = (weight * event) @ xc
    gone = np.zeros(time.size) if leave is None else leave

    def risk_sums(v: np.ndarray) -> np.ndarray:
        """Sum of v over the risk set {T >= t} at each event time."""
        at_or_after = np.cumsum(np.bincount(inv, weights=v, minlength=k)[::-1])[::-1]
        return (at_or_after - np.bincount(inv, weights=v * gone, minlength=k))[m]

    def terms(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = xc @ b
        wr = weight * np.exp(eta - eta.max())
        s0 = risk_sums(wr)
        mean = np.stack([risk_sums(wr * xc[:, j]) for j in range(p)], axis=1) / s0[:, None]
        ll = float((weight * event) @ (eta - eta.max()) - d[m] @ np.log(s0))
        # information sum_k d_k (S2_k / S0_k - mean_k mean_k') with S2_k the risk set's sum of
        # wr x x': reordered as one weighted Gram matrix X' diag(wr c) X, where c_i sums
        # d_k / S0_k over the event times at which row i is at risk (before its own time, and
        # at it unless it leaves then)
        hz = np.zeros(k)
        hz[m] = d[m] / s0
        c = (np.cumsum(hz) - hz)[inv] + hz[inv] * (1.0 - gone)
        info = (xc * (wr * c)[:, None]).T @ xc - (mean * d[m][:, None]).T @ mean
        return ll, xd - d[m] @ mean, info

    beta = np.zeros(p)
    ll, score, info = terms(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError as exc:
            raise ValueError("singular information matrix: constant or collinear "
                             "covariates") from exc
        for _ in range(30):  # step halving while the likelihood falls
            new_ll, new_score, new_info = terms(beta + step)
            if new_ll >= ll - 1e-10:
                break
            step = step / 2.0
        beta, ll, score, info = beta + step, new_ll, new_score, new_info
        if np.abs(step).max() < 1e-10:
            break
    try:
        se = np.sqrt(np.clip(np.diag(np.linalg.inv(info)), 0.0, None))
    except np.linalg.LinAlgError as exc:
        raise ValueError("singular information matrix at the estimate") from exc
    if not np.isfinite(beta).all() or (se * xc.std(axis=0) > 100).any():
        raise ValueError("monotone likelihood: a coefficient is infinite (e.g. every event "
                         "in one group)")
    return (beta, se) if with_se else beta


def fit_hazard(
    fit_rows: pd.DataFrame,
    predict_rows: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    covariates: Sequence[str],
    what: str,
    leave: np.ndarray | None = None,
) -> HazardModel:
    """Hazard model for `event` (1 = the modelled transition) fitted on `fit_rows`.

    Cox with weighted Breslow baseline when `covariates`, weighted Nelson-Aalen (used as a
    product limit) otherwise; `risk` is evaluated for `predict_rows`. `what` names the model
    in error messages, e.g. "outcome model, arm 1". Rows with `leave` = 1 (for the censoring
    model: the events) are not at risk at their own time, so that at a tied time events come
    first, as Kaplan-Meier assumes.
    """
    if event.sum() == 0:
        raise ValueError(f"{what}: no events, the hazard is not estimable")
    covariates = list(covariates)
    if covariates:
        x = _design(fit_rows, covariates)
        if (x.std(axis=0) == 0).any():
            bad = [c for c, s in zip(covariates, x.std(axis=0), strict=True) if s == 0]
            raise ValueError(f"{what}: constant covariates {bad}")
        try:
            beta = cox_breslow(x, time, event, weight, leave)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc
        centre = np.average(x, axis=0, weights=weight)
        eta_fit = (x - centre) @ beta
        eta_new = (_design(predict_rows, covariates) - centre) @ beta
        r_fit, r_new = np.exp(eta_fit), np.exp(eta_new)
    else:
        r_fit, r_new = np.ones(time.size), np.ones(len(predict_rows))
    jumps, inv = np.unique(time, return_inverse=True)
    wr = weight * r_fit
    at_risk = np.cumsum(np.bincount(inv, weights=wr)[::-1])[::-1]
    if leave is not None:
        at_risk = at_risk - np.bincount(inv, weights=wr * leave, minlength=jumps.size)
    deaths = np.bincount(inv, weights=weight * event, minlength=jumps.size)
    keep = deaths > 0
    dlam = deaths[keep] / at_risk[keep]
    return HazardModel(jumps[keep], dlam, r_new, product_limit=not covariates)


def fit_propensity_scores(
    frame: pd.DataFrame, treated: np.ndarray, weight: np.ndarray, covariates: Sequence[str]
) -> np.ndarray:
    """P(treated | covariates) from a weighted logistic regression with an intercept."""
    x = _design(frame, covariates)
    design = np.column_stack([np.ones(len(frame)), x])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError("propensity model: constant or collinear covariates")
    # Newton on the normal equations (the same MLE as statsmodels' GLM, which solves each
    # step by an SVD of the whole design); separation shows as scores of 0 or 1, checked below
    with np.errstate(over="ignore"):
        beta, _ = logit_newton(design, np.asarray(treated, dtype=float),
                               np.asarray(weight, dtype=float), np.zeros(design.shape[1]))
        ps = 1.0 / (1.0 + np.exp(-(design @ beta)))
    check_propensity(ps)
    return ps


def check_propensity(ps: np.ndarray) -> None:
    """Raise if any score is missing or at 0 / 1 (no overlap: the weights are infinite)."""
    if not np.isfinite(ps).all():
        raise ValueError("propensity scores must be finite")
    if ((ps < _PS_EDGE) | (ps > 1.0 - _PS_EDGE)).any():
        raise ValueError("propensity scores at 0 or 1: no overlap between the arms "
                         "(separation in the propensity model)")
