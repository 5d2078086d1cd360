"""Doubly robust adjusted curves of the primary analysis as rows of the estimates table.

The primary analysis (``risk_set_weighting``) re-weights each trial's comparison people by
their odds of starting treatment. Beside it, the augmented estimator of
``pipeline.comparison.adjusted_curves.aipw_survival`` (Ozenne et al. 2020, as R's
adjustedCurves ``method = "aiptw"``) gives adjusted survival curves in the treated (ATT) that
stay consistent if either the outcome model (Cox per arm on the covariates) or the treatment
model (logistic, fitted on the stacked trials with the candidates' sampling weights) is right.
Rows: the 12/24-month risks per arm, their difference, and the RMST difference to the last
window, with 95% CIs from the influence function summed within person (people appear in
several trials). Estimates the ATT in the pooled trials; nothing here is causal without the
no-unmeasured-confounding assumption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.comparison_effects import counts
from pipeline.analysis.estimates import month_days
from pipeline.analysis.risk_set_weighting import dummy_coded
from pipeline.analysis.survival_results import _row, not_estimable
from pipeline.config import EvaluationConfig

ANALYSIS = "weighted_risk_sets_dr"


def covariate_design(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """``risk_set_weighting.dummy_coded`` covariates; columns without variation are dropped
    (they cannot enter a model)."""
    x = dummy_coded(frame, cfg)
    return x.loc[:, x.nunique() > 1]


def dr_rows(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """Doubly robust risks, risk differences and RMST difference of the stacked frame
    (treated rows and weighted comparison rows with ``sampling_weight`` and ``cluster``)."""
    from pipeline.comparison.adjusted_curves import aipw_survival

    c = counts(frame, "weight")
    months = list(cfg.followup_months)
    last = month_days(months[-1])
    x = covariate_design(frame, cfg)
    data = pd.concat([frame[["time_days", "event", "treated", "sampling_weight", "cluster"]]
                      .reset_index(drop=True), x.reset_index(drop=True)], axis=1)
    try:
        res = aipw_survival(data, "time_days", "event", "treated", list(x.columns),
                            [month_days(m) for m in months], estimand="ATT",
                            weights_col="sampling_weight", cluster_col="cluster",
                            tau=float(last))
    except ValueError as exc:
        note = f"doubly robust (AIPW) not fitted: {exc}"
        return pd.DataFrame([not_estimable(ANALYSIS, f"rd_{m}m", c, "model_not_fitted",
                                           unit="risk difference", note=note)
                             for m in months])
    note = ("doubly robust (AIPW, ATT): Cox outcome and censoring models per arm, logistic "
            "treatment model; influence-function CIs clustered by person")
    rows = []
    surv = res.survival
    for m in months:
        day = month_days(m)
        for arm, label in ((1, "treated"), (0, "comparison")):
            s = surv[(surv["arm"] == arm) & (surv["time"] == day)].iloc[0]
            rows.append(_row(ANALYSIS, f"risk_{m}m", c, 1 - s["survival"], 1 - s["upper"],
                             1 - s["lower"], unit="proportion", arm=label, note=note))
        d = res.risk_difference[res.risk_difference["time"] == day].iloc[0]
        p = _p(d["estimate"], d["se"])
        rows.append(_row(ANALYSIS, f"rd_{m}m", c, d["estimate"], d["lower"], d["upper"], p,
                         unit="risk difference", note=note))
    if res.rmst is not None:
        r = res.rmst.iloc[0]
        rows.append(_row(ANALYSIS, f"rmst_diff_{months[-1]}m", c, r["difference"], r["lower"],
                         r["upper"], _p(r["difference"], r["se"]), unit="days", note=note))
    return pd.DataFrame(rows)


def _p(estimate: float, se: float) -> float:
    from scipy import stats

    return float(2 * stats.norm.sf(abs(estimate / se))) if se > 0 else np.nan
