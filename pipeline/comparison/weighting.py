"""Propensity-score weights (inverse-probability for ATE/ATT/ATC, overlap for ATO) and the
effective sample size."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["effective_sample_size", "ipw_weights"]

Estimand = Literal["ATT", "ATE", "ATC", "ATO"]


def ipw_weights(
    ps: np.ndarray,
    treated: np.ndarray,
    estimand: Estimand = "ATT",
    stabilized: bool = True,
    trim: float | tuple[float, float] | None = None,
    truncate: float | None = None,
    p_treated: float | None = None,
) -> np.ndarray:
    """Propensity-score weights for the chosen estimand.

    ATE: treated 1/ps, controls 1/(1-ps); stabilised by the marginal P(A=a) (Hernán &
    Robins ch. 12), so weights average about 1 in each group.
    ATT: treated 1, controls ps/(1-ps) (odds weights); stabilised controls are multiplied
    by P(A=0)/P(A=1) so their weights sum to about the number of controls. Treated keep 1.
    ATC: mirror image of ATT.
    ATO: overlap weights (Li, Morgan & Zaslavsky 2018, JASA 113:390): treated 1-ps, controls
    ps. They target the population with the most overlap, are bounded by 1 (no extreme
    weights, so no trimming is needed) and, with a logistic score fitted by maximum
    likelihood, balance the weighted mean of every term of the score model exactly (the
    score equations). `stabilized` does not apply (the scale of the weights changes no
    weighted mean).

    `trim` drops units (weight 0) whose score is outside bounds: a tuple ``(lo, hi)`` of
    propensity scores, or a float ``q`` meaning the ``q`` and ``1-q`` quantiles of all
    scores. The marginal probabilities used for stabilisation are computed after trimming.
    `truncate` caps weights at that quantile (e.g. 0.99) of the non-zero weights.
    `p_treated` overrides the marginal P(A=1) used for stabilisation (e.g. a bootstrap
    resample's treated share when rows carry frequency weights).
    """
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treated).astype(bool)
    if ps.shape != t.shape:
        raise ValueError("ps and treated must have the same length")
    if np.isnan(ps).any():
        raise ValueError("missing propensity scores")
    if ((ps <= 0) | (ps >= 1)).any():
        raise ValueError("propensity scores must be strictly between 0 and 1")
    keep = np.ones(ps.shape, dtype=bool)
    if trim is not None:
        if isinstance(trim, tuple):
            lo, hi = trim
        else:
            if not 0 < trim < 0.5:
                raise ValueError("quantile trim must be in (0, 0.5)")
            lo, hi = np.quantile(ps, [trim, 1 - trim])
        keep = (ps >= lo) & (ps <= hi)
    p1 = t[keep].mean() if keep.any() else np.nan
    if p_treated is not None:
        p1 = float(p_treated)
    if not 0 < p1 < 1:
        raise ValueError("need treated and control units (after trimming)")
    match estimand.upper():
        case "ATE":
            w = np.where(t, 1.0 / ps, 1.0 / (1.0 - ps))
            if stabilized:
                w = w * np.where(t, p1, 1.0 - p1)
        case "ATT":
            w = np.where(t, 1.0, ps / (1.0 - ps))
            if stabilized:
                w = np.where(t, w, w * (1.0 - p1) / p1)
        case "ATC":
            w = np.where(t, (1.0 - ps) / ps, 1.0)
            if stabilized:
                w = np.where(t, w * p1 / (1.0 - p1), w)
        case "ATO":
            w = np.where(t, 1.0 - ps, ps)
        case _:
            raise ValueError(f"unknown estimand {estimand!r}")
    w = np.where(keep, w, 0.0)
    if truncate is not None:
        if not 0 < truncate < 1:
            raise ValueError("truncate must be a quantile in (0, 1)")
        cap = np.quantile(w[w > 0], truncate)
        w = np.minimum(w, cap)
    return w


def effective_sample_size(weights: np.ndarray, groups: np.ndarray | None = None) -> float | dict:
    """Kish effective sample size (sum w)^2 / sum w^2; per group if `groups` is given."""
    w = np.asarray(weights, dtype=float)
    if groups is None:
        s2 = float(np.sum(w * w))
        return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0
    g = np.asarray(groups)
    return {k: effective_sample_size(w[g == k]) for k in np.unique(g).tolist()}
