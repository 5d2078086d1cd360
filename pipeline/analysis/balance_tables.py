"""Covariate balance before and after matching and weighting (``analysis.balance``).

Standardised mean differences, variance ratios and Kolmogorov-Smirnov statistics come from
``pipeline.comparison.balance_table`` (MatchIt's definitions, i.e. cobalt's ``bal.tab(...,
stats = c("m", "v", "ks"), binary = "std")``). The SMD denominator is fixed in the unadjusted
sample (treated and naive comparison units) so that before/after rows differ only through the
means: the treated SD for the ATT analyses (before, matched, weighted_att, stacked trial
frames), the control SD for the ATC, the pooled SD for the ATE and ATO (cobalt's
``s.d.denom`` defaults). Categorical covariates get one row per level (``site_SITE_A``).
Binary covariates have no variance ratio; their ``ks`` is the difference in proportions.

Stacked frames (the matched frame, or a sequential-trial frame: one row per (trial, person),
column ``weight``) are pooled over all trials; when they carry a trial column
(``matched_set`` by default) the rows also get cobalt's cluster summary of within-trial
balance: ``trial_mean_abs_smd`` (mean over trials of |SMD| between the trial's treated person
and its weighted controls, weighted by the trial's treated weight) and ``trial_max_abs_smd``
(its maximum). ``flagged`` marks |SMD| above the threshold (0.1) in the pooled sample.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.analysis.propensity_scores import numeric_covariates
from pipeline.comparison import balance_table
from pipeline.config import EvaluationConfig

BALANCE_COLUMNS = ["cohort", "method", "covariate", "smd", "variance_ratio", "flagged", "ks",
                   "trial_mean_abs_smd", "trial_max_abs_smd"]
_TRIAL_COLUMNS = ("trial_mean_abs_smd", "trial_max_abs_smd")
# cobalt's default SMD denominator per estimand (always from the unweighted units)
_SD_BY_ESTIMAND = {"att": "treated", "atc": "control", "ate": "pooled", "ato": "pooled"}


def _table(frame: pd.DataFrame, cfg: EvaluationConfig, weights: np.ndarray | None,
           sd: str, denominators: pd.Series | None = None,
           trial_col: str | None = None) -> pd.DataFrame:
    data = numeric_covariates(frame, cfg)
    return balance_table(data, [*cfg.covariates, *cfg.categorical], "treated", weights, sd=sd,
                         categorical=list(cfg.categorical),
                         sd_denominators=None if denominators is None else denominators.to_dict(),
                         trial_col=trial_col)


def _stacked_table(frame: pd.DataFrame, cfg: EvaluationConfig, before: pd.DataFrame,
                   trial_col: str) -> pd.DataFrame:
    """Pooled balance of a stacked frame (column ``weight``), with the within-trial summary
    when the frame has `trial_col`; ATT denominators of the unadjusted sample."""
    trials = trial_col if trial_col in frame.columns else None
    return _table(frame, cfg, frame["weight"].to_numpy(float), "treated",
                  before["sd_denominator"], trials)


def balance_rows(cohort: str, units: pd.DataFrame, cfg: EvaluationConfig,
                 matched: pd.DataFrame | None = None,
                 weights: Mapping[str, np.ndarray] | None = None, *,
                 stacked: Mapping[str, pd.DataFrame] | None = None,
                 trial_col: str = "matched_set") -> pd.DataFrame:
    """Balance rows of one cohort (columns ``BALANCE_COLUMNS``).

    ``before`` on ``units``; ``matched`` on the stacked matched frame (column ``weight``);
    ``weighted_<key>`` on ``units`` with the weights in ``weights`` (keys ``att``, ``ate``,
    ``atc``, ``ato``); one method per entry of ``stacked`` (method name -> stacked
    sequential-trial frame with ``weight``, e.g. ``{"trials": frame}``). Stacked frames with
    a `trial_col` column get the within-trial summary columns; other rows have NaN there.
    """
    before = _table(units, cfg, None, "treated")
    tables = {"before": before}
    frames = dict(stacked or {})
    if matched is not None and len(matched):
        frames = {"matched": matched, **frames}
    for method, frame in frames.items():
        tables[method] = _stacked_table(frame, cfg, before, trial_col)
    for key, w in (weights or {}).items():
        sd = _SD_BY_ESTIMAND.get(key.lower())
        if sd is None:
            raise ValueError(f"unknown estimand key {key!r}; use one of {list(_SD_BY_ESTIMAND)}")
        denominators = before["sd_denominator"] if sd == "treated" else None
        tables[f"weighted_{key.lower()}"] = _table(units, cfg, w, sd, denominators)
    parts = [pd.DataFrame({"cohort": cohort, "method": method, "covariate": tab.index,
                           "smd": tab["smd"].to_numpy(float),
                           "variance_ratio": tab["var_ratio"].to_numpy(float),
                           "ks": tab["ks"].to_numpy(float),
                           **{c: tab[c].to_numpy(float) if c in tab else np.nan
                              for c in _TRIAL_COLUMNS}})
             for method, tab in tables.items()]
    out = pd.concat(parts, ignore_index=True)
    out["flagged"] = out["smd"].abs() > cfg.comparison.balance_threshold
    return out[BALANCE_COLUMNS]


def imbalance_counts(balance: pd.DataFrame) -> dict[str, int]:
    """Covariate rows with |SMD| above the threshold after adjustment, per cohort/method
    (every method but ``before``: matching, weighting and stacked trial frames)."""
    after = balance[balance["method"] != "before"]
    flagged = after[after["flagged"]]
    out = {f"{c}/{m}": 0 for c, m in after[["cohort", "method"]].drop_duplicates()
           .itertuples(index=False)}
    for (c, m), n in flagged.groupby(["cohort", "method"]).size().items():
        out[f"{c}/{m}"] = int(n)
    return out
