"""Covariate balance: standardised mean differences and variance ratios as MatchIt reports them.

Definitions (MatchIt 4.x ``summary.matchit``, functions ``bal1var``/``smd_denom``/``wvar``):

* Means are weighted means within each group (weights = matching or IP weights).
* SMD = (mean_treated - mean_control) / s, where s is computed **once, in the full
  unweighted sample** (all rows of `df`, whatever their weight): the treated group's SD
  for ``sd="treated"`` (MatchIt's default for the ATT), the control group's for
  ``"control"``, or sqrt((var_t + var_c) / 2) for ``"pooled"`` (ATE). So before/after
  tables share a denominator and differences in SMD reflect only changes in the means.
* Variances: for a 0/1 covariate p(1-p) (no n-1 correction); otherwise the
  reliability-weights variance sum w(x - m)^2 / (1 - sum w^2) with w normalised to sum
  to 1 (equals the usual n-1 variance when unweighted).
* Variance ratio = var_treated / var_control with the (weighted) variances; not reported
  for binary covariates, and NaN (undefined) when the control variance is zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["balance_table", "flag_imbalanced", "love_plot_data"]

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


def balance_table(
    df: pd.DataFrame,
    covariates: Sequence[str],
    treated_col: str,
    weights: np.ndarray | pd.Series | str | None = None,
    sd: Literal["treated", "control", "pooled"] = "treated",
    *,
    categorical: Sequence[str] = (),
    sd_denominators: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Balance statistics per covariate (one row each), with MatchIt's definitions.

    `df` must hold the *whole* sample (unmatched rows with weight 0) so that the SMD
    denominator comes from the unadjusted sample; alternatively pass `sd_denominators`
    (covariate -> SD), e.g. ``balance_table(cohort, ...)["sd_denominator"]`` from the
    full risk-set cohort when `df` is a stacked matched frame (treated rows plus matched
    control rows with covariates as of each index date, weighted by ``set_weight``).
    Categorical (or non-numeric) covariates are shown one row per level
    (``col_level``), as MatchIt does for factors.

    Columns: mean_treated, mean_control, smd, var_ratio (NaN for binary), sd_denominator,
    binary.
    """
    t = df[treated_col].to_numpy().astype(bool)
    if not t.any() or t.all():
        raise ValueError("need treated and control rows")
    if weights is None:
        w = np.ones(len(df))
    elif isinstance(weights, str):
        w = df[weights].to_numpy(dtype=float)
    else:
        w = np.asarray(weights, dtype=float)
    if w.shape != (len(df),) or np.isnan(w).any() or (w < 0).any():
        raise ValueError("weights must be non-negative, one per row, without NaN")
    if w[t].sum() <= 0 or w[~t].sum() <= 0:
        raise ValueError("both groups need positive total weight")
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
            vr = np.nan
        else:
            pos1, pos0 = t & (w > 0), ~t & (w > 0)
            vr = _variance_ratio(_wvar(x[pos1], w[pos1], False),
                                 _wvar(x[pos0], w[pos0], False), float(np.mean(x * x)))
        rows.append((name, m1, m0, smd, vr, s, binary))
    out = pd.DataFrame(
        rows,
        columns=[
            "covariate",
            "mean_treated",
            "mean_control",
            "smd",
            "var_ratio",
            "sd_denominator",
            "binary",
        ],
    )
    return out.set_index("covariate")


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
