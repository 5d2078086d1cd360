"""Propensity-score model (logistic regression) and common-support diagnostics.

The design matrix is built here rather than with a formula so that the same coding
(fixed reference levels, fixed column order, squared terms) can be re-applied to new
rows: risk-set candidates on other dates, bootstrap resamples, or a scoring table.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DesignSpec",
    "PropensityFitError",
    "PropensityModel",
    "common_support",
    "fit_propensity",
    "overlap_summary",
    "trim_common_support",
]

_QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


class PropensityFitError(ValueError):
    """The propensity model cannot be estimated (separation, no convergence, bad data)."""


def _levels(s: pd.Series) -> list[Any]:
    """Observed levels in a deterministic order: category order, else sorted."""
    observed = pd.unique(s.dropna())
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(observed)
        return [c for c in s.cat.categories if c in present]
    try:
        return sorted(observed)
    except TypeError:  # mixed types: sort on the string form
        return sorted(observed, key=str)


@dataclass(frozen=True)
class DesignSpec:
    """How covariates become design-matrix columns (fixed at fit time).

    `terms` is the ordered list of covariates; categorical ones are dummy-coded against
    `levels[col][0]` (the reference); `squares` get an extra ``col^2`` column right after
    the linear term. An intercept ``const`` comes first.
    """

    terms: tuple[str, ...]
    levels: Mapping[str, tuple[Any, ...]]
    squares: tuple[str, ...] = ()

    @classmethod
    def from_data(
        cls,
        df: pd.DataFrame,
        covariates: Sequence[str],
        categorical: Sequence[str] = (),
        squares: Sequence[str] = (),
        reference: Mapping[str, Any] | None = None,
    ) -> DesignSpec:
        """Fix levels (reference first) and term order from the fitting data."""
        terms = list(dict.fromkeys([*covariates, *categorical]))
        missing = [c for c in terms if c not in df.columns]
        if missing:
            raise KeyError(f"covariates not in data: {missing}")
        bad_sq = [c for c in squares if c in categorical or c not in terms]
        if bad_sq:
            raise ValueError(f"squares must name numeric covariates: {bad_sq}")
        reference = dict(reference or {})
        levels: dict[str, tuple[Any, ...]] = {}
        for col in categorical:
            lv = _levels(df[col])
            if col in reference:
                ref = reference[col]
                if ref not in lv:
                    raise ValueError(f"reference level {ref!r} not observed in {col!r}")
                lv = [ref, *[v for v in lv if v != ref]]
            levels[col] = tuple(lv)
        return cls(terms=tuple(terms), levels=levels, squares=tuple(squares))

    @property
    def columns(self) -> list[str]:
        """Design-matrix column names, in order."""
        cols = ["const"]
        for t in self.terms:
            if t in self.levels:
                cols += [f"{t}[T.{v}]" for v in self.levels[t][1:]]
            else:
                cols.append(t)
                if t in self.squares:
                    cols.append(f"{t}^2")
        return cols

    def matrix(self, df: pd.DataFrame) -> np.ndarray:
        """Float design matrix for `df` (raises on missing values or unseen levels)."""
        n = len(df)
        blocks: list[np.ndarray] = [np.ones((n, 1))]
        for t in self.terms:
            s = df[t]
            if s.isna().any():
                raise ValueError(f"missing values in covariate {t!r}")
            if t in self.levels:
                lv = self.levels[t]
                vals = s.to_numpy(dtype=object)
                known = pd.Series(vals).isin(lv).to_numpy()
                if not known.all():
                    unseen = sorted(set(vals[~known]), key=str)
                    raise ValueError(f"unseen levels in {t!r}: {unseen}")
                codes = pd.Categorical(vals, categories=list(lv)).codes
                blocks.append((codes[:, None] == np.arange(1, len(lv))[None, :]).astype(float))
            else:
                x = pd.to_numeric(s, errors="raise").to_numpy(dtype=float)
                blocks.append(x[:, None])
                if t in self.squares:
                    blocks.append((x * x)[:, None])
        return np.hstack(blocks)

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Design matrix as a DataFrame with named columns and `df`'s index."""
        return pd.DataFrame(self.matrix(df), columns=self.columns, index=df.index)


@dataclass(frozen=True)
class PropensityModel:
    """Fitted logistic propensity model; `predict` applies the same coding to new rows."""

    params: pd.Series
    spec: DesignSpec
    treatment_col: str
    scores: np.ndarray
    result: Any = field(repr=False)

    def predict_logit(self, df: pd.DataFrame) -> np.ndarray:
        """Linear predictor (log-odds of treatment)."""
        return self.spec.matrix(df) @ self.params.to_numpy()

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Propensity score P(treated | covariates)."""
        return _expit(self.predict_logit(df))

    @property
    def logits(self) -> np.ndarray:
        """Linear predictor for the fitting rows."""
        return _logit(self.scores)


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def _separating_levels(df: pd.DataFrame, spec: DesignSpec, y: np.ndarray) -> list[str]:
    """Levels of categorical or 0/1 covariates whose people are all treated or all not."""
    out = []
    for t in spec.terms:
        x = df[t].to_numpy(dtype=object) if t in spec.levels else df[t].to_numpy()
        if t not in spec.levels and not np.isin(x, (0, 1)).all():
            continue
        codes, uniq = pd.factorize(x, sort=False)
        n = np.bincount(codes)
        s = np.bincount(codes, weights=y)
        bad = (s == 0) | (s == n)
        out += [f"{t}={uniq[i]!r}" for i in np.flatnonzero(bad)]
    return out


def fit_propensity(
    df: pd.DataFrame,
    treatment_col: str,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    *,
    squares: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
    maxiter: int = 100,
) -> PropensityModel:
    """Fit P(treated | covariates) by maximum likelihood (statsmodels ``Logit``, Newton).

    Categorical covariates are dummy-coded against their first level (category order for
    pandas categoricals, else sorted values) unless `reference` names another; `squares`
    adds quadratic terms. Perfect or quasi-perfect separation and non-convergence raise
    `PropensityFitError`, because the resulting scores of exactly 0 or 1 make both
    matching distances and inverse-probability weights meaningless.
    """
    y_s = df[treatment_col]
    if y_s.isna().any():
        raise ValueError(f"missing values in treatment column {treatment_col!r}")
    y = y_s.to_numpy(dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{treatment_col!r} must be coded 0/1")
    if y.min() == y.max():
        raise PropensityFitError("treatment has a single value: no comparison possible")
    spec = DesignSpec.from_data(df, covariates, categorical, squares, reference)
    X = spec.frame(df)
    const_cols = [c for c in X.columns[1:] if np.ptp(X[c].to_numpy()) == 0]
    if const_cols:
        raise PropensityFitError(f"covariates without variation: {const_cols}")
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise PropensityFitError("design matrix is rank deficient (collinear covariates)")
    import statsmodels.api as sm  # imported here: ~0.5 s, kept off Dagster's start-up path
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sm.Logit(y, X).fit(method="newton", maxiter=maxiter, disp=0)
    kinds = {type(w.message) for w in caught}
    suspects = _separating_levels(df, spec, y)
    if PerfectSeparationWarning in kinds or suspects:
        raise PropensityFitError(
            "perfect or quasi-perfect separation in the propensity model"
            + (
                f" (levels with only treated or only untreated people: {suspects})"
                if suspects
                else ""
            )
            + "; merge sparse levels, drop the covariate, or restrict the cohort"
        )
    if ConvergenceWarning in kinds or not result.mle_retvals.get("converged", True):
        raise PropensityFitError(
            "propensity model did not converge (possible separation or extreme scaling)"
        )
    params = pd.Series(np.asarray(result.params), index=X.columns, name="coef")
    scores = _expit(X.to_numpy() @ params.to_numpy())
    return PropensityModel(params, spec, treatment_col, scores, result)


def common_support(ps: np.ndarray, treated: np.ndarray) -> tuple[float, float]:
    """[max of group minima, min of group maxima] of the propensity score."""
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treated).astype(bool)
    if not t.any() or t.all():
        raise ValueError("need both treated and control units")
    return float(max(ps[t].min(), ps[~t].min())), float(min(ps[t].max(), ps[~t].max()))


def overlap_summary(ps: np.ndarray, treated: np.ndarray) -> dict[str, Any]:
    """Common-support bounds, counts/shares outside them by group, and ps quantiles.

    The support is [max of group minima, min of group maxima]; a unit is outside if its
    score lies strictly below the lower or above the upper bound.
    """
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treated).astype(bool)
    lo, hi = common_support(ps, t)
    outside = (ps < lo) | (ps > hi)
    q = pd.DataFrame(
        {
            "treated": np.quantile(ps[t], _QUANTILES),
            "control": np.quantile(ps[~t], _QUANTILES),
        },
        index=pd.Index(_QUANTILES, name="quantile"),
    )
    return {
        "support": (lo, hi),
        "n_treated": int(t.sum()),
        "n_control": int((~t).sum()),
        "n_treated_outside": int(outside[t].sum()),
        "n_control_outside": int(outside[~t].sum()),
        "share_treated_outside": float(outside[t].mean()),
        "share_control_outside": float(outside[~t].mean()),
        "quantiles": q,
    }


def trim_common_support(
    ps: np.ndarray,
    treated: np.ndarray,
    *,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """Boolean mask of units to keep.

    Without `bounds`, keeps units inside the common support (as MatchIt's
    ``discard = "both"``); with `bounds=(lo, hi)` keeps ``lo <= ps <= hi`` (e.g. the
    Crump et al. 0.1–0.9 rule).
    """
    ps = np.asarray(ps, dtype=float)
    if bounds is None:
        lo, hi = common_support(ps, treated)
    else:
        lo, hi = bounds
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError("bounds must satisfy 0 <= lo < hi <= 1")
    return (ps >= lo) & (ps <= hi)
