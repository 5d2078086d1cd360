"""Covariate balance before and after matching and weighting (``analysis.balance``).

Standardised mean differences and variance ratios come from
``pipeline.comparison.balance_table`` (MatchIt's definitions). The SMD denominator is fixed in
the unadjusted sample (treated and naive comparison units) so that before/after rows differ
only through the means: the treated SD for the ATT analyses (before, matched, weighted_att),
the pooled SD for the ATE. Categorical covariates get one row per level (``site_SITE_A``).
Binary covariates have no variance ratio. ``flagged`` marks |SMD| above the threshold (0.1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.propensity_scores import numeric_covariates
from pipeline.comparison import balance_table
from pipeline.config import EvaluationConfig

BALANCE_COLUMNS = ["cohort", "method", "covariate", "smd", "variance_ratio", "flagged"]
ADJUSTED_METHODS = ("matched", "weighted_att", "weighted_ate")


def _table(frame: pd.DataFrame, cfg: EvaluationConfig, weights: np.ndarray | None,
           sd: str, denominators: pd.Series | None = None) -> pd.DataFrame:
    data = numeric_covariates(frame, cfg)
    return balance_table(data, [*cfg.covariates, *cfg.categorical], "treated", weights, sd=sd,
                         categorical=list(cfg.categorical),
                         sd_denominators=None if denominators is None else denominators.to_dict())


def balance_rows(cohort: str, units: pd.DataFrame, cfg: EvaluationConfig,
                 matched: pd.DataFrame | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Balance rows of one cohort: ``before`` on ``units``; ``matched`` on the stacked matched
    frame (column ``weight``); ``weighted_att``/``weighted_ate`` on ``units`` with the IP
    weights given in ``weights`` (keys ``att``/``ate``)."""
    before = _table(units, cfg, None, "treated")
    tables = {"before": before}
    if matched is not None and len(matched):
        tables["matched"] = _table(matched, cfg, matched["weight"].to_numpy(float), "treated",
                                   before["sd_denominator"])
    for key, w in (weights or {}).items():
        if key == "att":
            tables["weighted_att"] = _table(units, cfg, w, "treated", before["sd_denominator"])
        else:
            tables["weighted_ate"] = _table(units, cfg, w, "pooled")
    parts = [pd.DataFrame({"cohort": cohort, "method": method, "covariate": tab.index,
                           "smd": tab["smd"].to_numpy(float),
                           "variance_ratio": tab["var_ratio"].to_numpy(float)})
             for method, tab in tables.items()]
    out = pd.concat(parts, ignore_index=True)
    out["flagged"] = out["smd"].abs() > cfg.comparison.balance_threshold
    return out[BALANCE_COLUMNS]


def imbalance_counts(balance: pd.DataFrame) -> dict[str, int]:
    """Covariate rows with |SMD| above the threshold after adjustment, per cohort/method."""
    after = balance[balance["method"].isin(ADJUSTED_METHODS)]
    flagged = after[after["flagged"]]
    out = {f"{c}/{m}": 0 for c, m in after[["cohort", "method"]].drop_duplicates()
           .itertuples(index=False)}
    for (c, m), n in flagged.groupby(["cohort", "method"]).size().items():
        out[f"{c}/{m}"] = int(n)
    return out
