"""Inverse-probability-of-treatment weighted comparisons (ATT and ATE) on the naive sample.

The sample is the cohort frame: every treated unit and one naive comparison unit per
comparison person. Weights are stabilised (``pipeline.comparison.ipw_weights``): ATT gives
treated people 1 and comparison people ps / (1 - ps) scaled to their number; ATE gives
P(A = a) / P(A = a | X). Optional trimming sets the weight of people outside the common support
(or outside configured score bounds) to 0, which changes the population the estimate is about.

Hazard ratios come from a weighted Cox model. Its robust (sandwich) SE takes the weights as
known; with bootstrap resamples drawn (the default), the reported ``hr`` uses the bootstrap SE
of the log HR instead (the score re-fitted in every resample: in the simulation study the robust
SE was conservative under the null) and the robust version is kept as ``hr_robust``. Risks and
their differences come from weighted means with sandwich SEs; Kaplan-Meier curves, their bands
and RMST differences from the same bootstrap (``survival_bootstrap.refit_ipw``).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipeline.analysis.comparison_effects import ALL_MEASURES, effect_rows
from pipeline.analysis.estimates import month_days
from pipeline.analysis.propensity_scores import CohortScore, keep_mask
from pipeline.analysis.survival_bootstrap import CurveBootstrap, curve_table, refit_ipw
from pipeline.comparison import ipw_weights
from pipeline.comparison.weighting import Estimand
from pipeline.config import EvaluationConfig, Trim

KM_MONTHS = tuple(range(0, 37))
WEIGHTED_KM_COLUMNS = ["estimand", "arm", "time", "surv", "lower", "upper", "n_risk"]


def survival_grid(cfg: EvaluationConfig) -> np.ndarray:
    """Whole days from 0 to the longer of 36 months and the last follow-up window."""
    last = max(month_days(max(KM_MONTHS)), *(month_days(m) for m in cfg.followup_months))
    return np.arange(0, last + 1)


def ipw_frame(units: pd.DataFrame, ps: np.ndarray, estimand: Estimand, trim: Trim = None
              ) -> pd.DataFrame:
    """``units`` with a ``weight`` column: stabilised IP weights, 0 for trimmed units."""
    t = units["treated"].to_numpy(bool)
    keep = keep_mask(ps, t, trim)
    w = np.zeros(len(units))
    w[keep] = ipw_weights(ps[keep], t[keep], estimand, stabilized=True)
    return units.assign(weight=w)


def weighted_analysis(units: pd.DataFrame, ps: np.ndarray, score: CohortScore,
                      cfg: EvaluationConfig, analysis: str, estimand: Estimand,
                      trim: Trim = None, n_boot: int | None = None,
                      measures: Collection[str] = ALL_MEASURES
                      ) -> tuple[pd.DataFrame, CurveBootstrap | None, pd.DataFrame]:
    """Estimate rows of one weighted analysis, its bootstrap curves (None if n_boot = 0) and
    the weighted frame (column ``weight``).

    The ``hr`` row's CI and p use the bootstrap SE of the log HR when resamples are drawn; the
    robust-SE version is kept as ``hr_robust``.
    """
    frame = ipw_frame(units, ps, estimand, trim)
    n_boot = cfg.comparison.bootstrap_replicates if n_boot is None else n_boot
    boot = None
    if n_boot > 0:
        kept = frame[frame["weight"] > 0]

        def design(f: pd.DataFrame) -> np.ndarray:
            return score.design(f, cfg)

        boot = refit_ipw(kept, design, score.model, survival_grid(cfg), n_boot, cfg.seed,
                         estimand=estimand, trim=trim,
                         log_hr="hr" in measures)
    trimmed = int((frame["weight"] == 0).sum())
    note = f"IP weights ({estimand}, stabilised)" + (
        f"; {trimmed} units trimmed ({trim})" if trim is not None else "")
    hr_se = None if boot is None or "hr" not in measures else (
        boot.stat_se(), f"bootstrap SE ({len(boot.stat_reps)} resamples, score re-fitted)")
    rows = effect_rows(frame, cfg, analysis, weights_col="weight", boot=boot, note=note,
                       measures=measures, hr_se=hr_se)
    return rows, boot, frame


def weighted_km_rows(estimand: str, boot: CurveBootstrap, units: pd.DataFrame
                     ) -> pd.DataFrame:
    """Weighted KM at a monthly grid (days) with bootstrap bands and the unweighted number at
    risk per arm among ``units`` (the weighted frame's units with positive weight), so that the
    report can stop curves where fewer than the threshold remain."""
    days = [month_days(m) for m in KM_MONTHS]
    n_risk = {}
    for arm, code in (("treated", 1), ("comparison", 0)):
        t = np.sort(units.loc[units["treated"] == code, "time_days"].to_numpy(float))
        n_risk[arm] = len(t) - np.searchsorted(t, days, side="left")
    out = curve_table(boot, days, n_risk)
    out.insert(0, "estimand", estimand)
    return out[WEIGHTED_KM_COLUMNS]
