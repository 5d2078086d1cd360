"""Covariate balance: standardised mean differences, variance ratios and KS statistics.

The definitions are MatchIt's (4.x ``summary.matchit``: ``bal1var``/``smd_denom``/``wvar``),
which are cobalt's ``bal.tab(..., stats = c("m", "v", "ks"), binary = "std",
s.d.denom = "treated")`` (same author, same code paths):

* Means are weighted means within each group (weights = matching or IP weights).
* SMD = (mean_treated - mean_control) / s, where s is computed **once, in the full
  unweighted sample** (all rows of `df`, whatever their weight): the treated group's SD
  for ``sd="treated"`` (MatchIt's default for the ATT), the control group's for
  ``"control"``, or sqrt((var_t + var_c) / 2) for ``"pooled"`` (ATE, ATO). So before/after
  tables share a denominator and differences in SMD reflect only changes in the means.
  Binary covariates are standardised too (MatchIt; cobalt's default would show the raw
  difference in proportions, here that is the ``ks`` column).
* Variances: for a 0/1 covariate p(1-p) (no n-1 correction); otherwise the
  reliability-weights variance sum w(x - m)^2 / (1 - sum w^2) with w normalised to sum
  to 1 (equals the usual n-1 variance when unweighted).
* Variance ratio = var_treated / var_control with the (weighted) variances; not reported
  for binary covariates, and NaN (undefined) when the control variance is zero.
* KS = max over x of |F_treated(x) - F_control(x)|, the weighted empirical CDFs (cobalt's
  ``col_w_ks``, MatchIt's "eCDF Max"); for a binary covariate that is |p_t - p_c|.

Stacked sequential-trial frames (one row per (trial, person), a person possibly a control in
many trials) are handled by pooling: every row counts with its weight, so the pooled
statistics are those of the weighted stacked sample. With ``trial_col`` the table also
summarises balance *within* trials the way cobalt summarises clusters
(``bal.tab(..., cluster = "trial")``, ``cluster.fun = c("mean", "max")``): per trial the
|SMD| between the trial's treated row(s) and its weighted controls, with the global
denominator, then its mean over trials (weighted by each trial's treated weight, which is the
plain mean when every trial has one treated person of weight 1) and its maximum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["balance_table", "flag_imbalanced", "love_plot_data", "weighted_ks"]

_EPS = np.sqrt(np.finfo(float).eps)


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def _wvar(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    """MatchIt's ``wvar``: p(1-p) for binary, reliability-weights variance otherwise."""
    w = w / w.sum()
    m = float(np.sum(w * x))
    if binary:
        return m * (1.0 - m)
    denom = 1.0 - float(np.sum(w * w))
    return float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else np.nan


def _variance_ratio(v1: float, v0: float, scale: float) -> float:
    """var_treated / var_control; NaN (undefined, not an error) when the control variance is
    zero up to rounding relative to the covariate's mean square ``scale`` — e.g. a covariate
    constant among comparison people, which under weights comes out as 0 or as 1e-30
    depending on float rounding."""
    noise = 1e-12 * max(scale, np.finfo(float).tiny)
    if not (np.isfinite(v1) and np.isfinite(v0)) or abs(v0) <= noise:
        return np.nan
    return float(v1 / v0) if abs(v1) > noise else 0.0


def _expand(df: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str]):
    """Numeric matrix with one 0/1 column per level of each categorical covariate."""
    cols: dict[str, np.ndarray] = {}
    for c in covariates:
        if c in categorical or not pd.api.types.is_numeric_dtype(df[c]):
            s = df[c]
            levels = (
                list(s.cat.categories)
                if isinstance(s.dtype, pd.CategoricalDtype)
                else sorted(pd.unique(s.dropna()), key=str)
            )
            for lv in levels:
                cols[f"{c}_{lv}"] = (s == lv).to_numpy(dtype=float)
        else:
            cols[c] = df[c].to_numpy(dtype=float)
    return cols


def weighted_ks(x: np.ndarray, treated: np.ndarray, weights: np.ndarray | None = None
                ) -> float:
    """Weighted two-sample Kolmogorov-Smirnov statistic, as cobalt's ``col_w_ks``.

    Weights are normalised to sum to 1 in each group (treated positive, controls negative);
    after one sort, the cumulative sum at the last row of each distinct value is
    F_treated - F_control there, and the statistic is its largest absolute value. Equals
    ``scipy.stats.ks_2samp(...).statistic`` with unit weights.
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(treated).astype(bool)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    x, t, w = x[keep], t[keep], w[keep]
    w1, w0 = w[t].sum(), w[~t].sum()
    if w1 <= 0 or w0 <= 0:
        raise ValueError("both groups need positive total weight")
    signed = np.where(t, w / w1, -w / w0)
    order = np.argsort(x)  # the order within ties is irrelevant: only run ends are read
    xs = x[order]
    cum = np.cumsum(signed[order])
    last = np.append(xs[1:] != xs[:-1], True)  # last row of each run of ties
    return float(np.abs(cum[last]).max())


def _trial_summary(x: np.ndarray, t: np.ndarray, w: np.ndarray, codes: np.ndarray,
                   n_trials: int, s: float) -> tuple[float, float]:
    """(weighted mean, max) over trials of |treated mean - weighted control mean| / s.

    Trials without positive treated and control weight are left out. Sums per trial come
    from ``np.bincount`` (no loop over rows or trials)."""
    w1, w0 = w * t, w * ~t
    sw1 = np.bincount(codes, w1, n_trials)
    sw0 = np.bincount(codes, w0, n_trials)
    ok = (sw1 > 0) & (sw0 > 0)
    if not ok.any():
        return np.nan, np.nan
    m1 = np.bincount(codes, w1 * x, n_trials)[ok] / sw1[ok]
    m0 = np.bincount(codes, w0 * x, n_trials)[ok] / sw0[ok]
    d = np.abs(m1 - m0)
    if s > _EPS:
        d = d / s
    return float(np.average(d, weights=sw1[ok])), float(d.max())


def _weights(df: pd.DataFrame, weights: np.ndarray | pd.Series | str | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(df))
    if isinstance(weights, str):
        return df[weights].to_numpy(dtype=float)
    return np.asarray(weights, dtype=float)


def balance_table(
    df: pd.DataFrame,
    covariates: Sequence[str],
    treated_col: str,
    weights: np.ndarray | pd.Series | str | None = None,
    sd: Literal["treated", "control", "pooled"] = "treated",
    *,
    categorical: Sequence[str] = (),
    sd_denominators: Mapping[str, float] | None = None,
    trial_col: str | None = None,
) -> pd.DataFrame:
    """Balance statistics per covariate (one row each), with MatchIt's/cobalt's definitions.

    `df` must hold the *whole* sample (unmatched rows with weight 0) so that the SMD
    denominator comes from the unadjusted sample; alternatively pass `sd_denominators`
    (covariate -> SD), e.g. ``balance_table(cohort, ...)["sd_denominator"]`` from the
    full risk-set cohort when `df` is a stacked matched or sequential-trial frame (rows
    weighted by ``weight``; pooled statistics count every row with its weight).
    Categorical (or non-numeric) covariates are shown one row per level
    (``col_level``), as MatchIt does for factors. `trial_col` names the trial (matched set)
    of each row of a stacked frame and adds the within-trial summary (module docstring).

    Columns: mean_treated, mean_control, smd, var_ratio (NaN for binary), ks,
    sd_denominator, binary; with `trial_col` also trial_mean_abs_smd, trial_max_abs_smd.
    """
    t = df[treated_col].to_numpy().astype(bool)
    if not t.any() or t.all():
        raise ValueError("need treated and control rows")
    w = _weights(df, weights)
    if w.shape != (len(df),) or np.isnan(w).any() or (w < 0).any():
        raise ValueError("weights must be non-negative, one per row, without NaN")
    if w[t].sum() <= 0 or w[~t].sum() <= 0:
        raise ValueError("both groups need positive total weight")
    if trial_col is not None:
        if df[trial_col].isna().any():
            raise ValueError(f"missing values in {trial_col!r}")
        codes, uniques = pd.factorize(df[trial_col])
    rows = []
    for name, x in _expand(df, covariates, categorical).items():
        if np.isnan(x).any():
            raise ValueError(f"missing values in {name!r}")
        binary = _is_binary(x)
        one = np.ones(len(x))
        if sd_denominators is not None and name in sd_denominators:
            s = float(sd_denominators[name])
        else:
            v1, v0 = _wvar(x[t], one[t], binary), _wvar(x[~t], one[~t], binary)
            s = {
                "treated": np.sqrt(v1),
                "control": np.sqrt(v0),
                "pooled": np.sqrt((v1 + v0) / 2.0),
            }[sd]
            if not np.isfinite(s) or s < _EPS:  # MatchIt falls back to the pooled SD
                s = np.sqrt((v1 + v0) / 2.0)
        m1 = float(np.average(x[t], weights=w[t]))
        m0 = float(np.average(x[~t], weights=w[~t]))
        diff = m1 - m0
        smd = diff / s if abs(diff) > _EPS and s > _EPS else diff
        if binary:
            vr, ks = np.nan, abs(diff)
        else:
            pos1, pos0 = t & (w > 0), ~t & (w > 0)
            vr = _variance_ratio(_wvar(x[pos1], w[pos1], False),
                                 _wvar(x[pos0], w[pos0], False), float(np.mean(x * x)))
            ks = weighted_ks(x, t, w)
        row = [name, m1, m0, smd, vr, ks, s, binary]
        if trial_col is not None:
            row += _trial_summary(x, t, w, codes, len(uniques), s)
        rows.append(row)
    columns = ["covariate", "mean_treated", "mean_control", "smd", "var_ratio", "ks",
               "sd_denominator", "binary"]
    if trial_col is not None:
        columns += ["trial_mean_abs_smd", "trial_max_abs_smd"]
    return pd.DataFrame(rows, columns=columns).set_index("covariate")


def flag_imbalanced(table: pd.DataFrame, threshold: float = 0.1) -> list[str]:
    """Covariates whose |SMD| exceeds `threshold` (0.1 is the usual rule of thumb)."""
    return table.index[table["smd"].abs() > threshold].tolist()


def love_plot_data(
    before: pd.DataFrame,
    after: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    before_label: str = "Unadjusted",
    after_label: str = "Adjusted",
    threshold: float = 0.1,
) -> pd.DataFrame:
    """Tidy frame for a love plot: one row per covariate and sample.

    `after` may be one table or a mapping label -> table (e.g. matched and IPW).
    Covariates are ordered by unadjusted |SMD| (largest first, `order` column). Returns
    columns covariate, sample, smd, abs_smd, var_ratio, order, imbalanced (|SMD| >
    threshold).
    """
    tables = {before_label: before}
    tables.update(after if isinstance(after, Mapping) else {after_label: after})
    rank = before["smd"].abs().sort_values(ascending=False, kind="stable")
    order = pd.Series(np.arange(len(rank)), index=rank.index)
    parts = []
    for label, tab in tables.items():
        part = pd.DataFrame(
            {
                "covariate": tab.index,
                "sample": label,
                "smd": tab["smd"].to_numpy(),
                "abs_smd": tab["smd"].abs().to_numpy(),
                "var_ratio": tab["var_ratio"].to_numpy(),
            }
        )
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["order"] = out["covariate"].map(order)
    out["imbalanced"] = out["abs_smd"] > threshold
    out["sample"] = pd.Categorical(out["sample"], categories=list(tables))
    return out.sort_values(["order", "sample"], kind="stable").reset_index(drop=True)
