"""Survival contrasts of treated vs comparison as a tidy table of estimates.

One function turns a cohort frame (``frames.cohort_frame``) into rows of (measure, estimate,
lower, upper, p) for one analysis: log-rank, Cox hazard ratios (unadjusted and adjusted, robust
or cluster-robust, optionally stratified by site) with proportional-hazards diagnostics,
restricted mean survival time differences, Kaplan-Meier and competing-risk cumulative incidence
at each follow-up window, and medians. Every statistic comes from ``pipeline.survival``, which
is tested against R.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.analysis.estimates import month_days
from pipeline.comparison.propensity import DesignSpec
from pipeline.config import EvaluationConfig
from pipeline.survival import (
    cumulative_incidence,
    fit_cox,
    kaplan_meier,
    logrank_test,
    median_survival,
    ph_test,
    rmst_difference,
    survival_at,
)

ESTIMATE_COLUMNS = ["analysis", "measure", "arm", "estimate", "lower", "upper", "p", "unit",
                    "n_treated", "n_comparison", "events_treated", "events_comparison", "note"]


def design(frame: pd.DataFrame, cfg: EvaluationConfig, exclude: Sequence[str] = ()
           ) -> pd.DataFrame:
    """Covariate design columns (no intercept) with fixed dummy coding; constant columns out."""
    numeric = [c for c in cfg.covariates if c not in exclude]
    categorical = [c for c in cfg.categorical if c not in exclude]
    data = frame.assign(**{c: frame[c].astype(float) for c in numeric})
    spec = DesignSpec.from_data(data, numeric, categorical)
    x = spec.frame(data).drop(columns="const")
    return x.loc[:, x.std(ddof=0) > 0]


def _row(analysis: str, measure: str, counts: dict, estimate: float, lower: float = np.nan,
         upper: float = np.nan, p: float = np.nan, unit: str = "", arm: str = "",
         note: str = "") -> dict:
    return {"analysis": analysis, "measure": measure, "arm": arm, "estimate": float(estimate),
            "lower": float(lower), "upper": float(upper), "p": float(p), "unit": unit,
            **counts, "note": note}


def _counts(frame: pd.DataFrame) -> dict:
    t = frame["treated"] == 1
    return {"n_treated": int(t.sum()), "n_comparison": int((~t).sum()),
            "events_treated": int(frame.loc[t, "event"].sum()),
            "events_comparison": int(frame.loc[~t, "event"].sum())}


def cox_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str, counts: dict, *,
             weights_col: str | None = None, cluster_col: str | None = None,
             adjust: bool = True) -> list[dict]:
    """Hazard ratio of treatment, unadjusted and adjusted, with robust SEs and PH diagnostics."""
    rows = []
    strata = ["site"] if cfg.stratify_by_site and frame["site"].nunique() > 1 else None
    specs = [("hr_unadjusted", pd.DataFrame(index=frame.index), None)]
    if adjust:
        specs.append(("hr_adjusted", design(frame, cfg, exclude=("site",) if strata else ()),
                      strata))
    for measure, x, st in specs:
        data = pd.concat([frame[["time_days", "event", "treated"]], x], axis=1)
        extra = {}
        for col in (weights_col, cluster_col, *(st or [])):
            if col:
                extra[col] = frame[col]
        data = data.assign(**extra)
        try:
            res = fit_cox(data, "time_days", "event", ["treated", *x.columns], strata=st,
                          weights_col=weights_col, cluster_col=cluster_col, robust=True,
                          compute_concordance=False)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            rows.append(_row(analysis, measure, counts, np.nan, unit="ratio",
                             note=f"model not estimable: {type(exc).__name__}"))
            continue
        s = res.summary.loc["treated"]
        rows.append(_row(analysis, measure, counts, s["hr"], s["lower"], s["upper"], s["p"],
                         unit="ratio", note="robust SE" + (", stratified by site" if st else "")))
        if measure == "hr_adjusted" or not adjust:
            try:
                zph = ph_test(res)
                rows.append(_row(analysis, "ph_test_treated", counts, zph.loc["treated", "chisq"],
                                 p=zph.loc["treated", "p"], unit="chi2"))
                rows.append(_row(analysis, "ph_test_global", counts, zph.loc["GLOBAL", "chisq"],
                                 p=zph.loc["GLOBAL", "p"], unit="chi2"))
            except (ValueError, np.linalg.LinAlgError, KeyError):
                pass
    return rows


def survival_contrast(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str,
                      adjust: bool = True) -> pd.DataFrame:
    """All unweighted survival estimates of one treated-vs-comparison analysis."""
    counts = _counts(frame)
    rows: list[dict] = []
    t, e, g = frame["time_days"].to_numpy(float), frame["event"].to_numpy(int), \
        frame["treated"].to_numpy(int)
    if counts["n_treated"] == 0 or counts["n_comparison"] == 0:
        return pd.DataFrame([_row(analysis, "none", counts, np.nan, note="an arm is empty")],
                            columns=ESTIMATE_COLUMNS)
    lr = logrank_test(t, e, g)
    rows.append(_row(analysis, "logrank", counts, lr.chi2, p=lr.p, unit="chi2"))
    cluster = "person_key" if frame["person_key"].duplicated().any() else None
    rows += cox_rows(frame, cfg, analysis, counts, cluster_col=cluster, adjust=adjust)
    status = np.where(e == 1, 1, np.where(frame["died"].to_numpy(bool), 2, 0))
    for arm, mask in (("treated", g == 1), ("comparison", g == 0)):
        km = kaplan_meier(t[mask], e[mask])
        med = median_survival(km)
        rows.append(_row(analysis, "median_days", counts, med[0], med[1], med[2], unit="days",
                         arm=arm))
        cif = cumulative_incidence(t[mask], status[mask], cause=1)
        for m in cfg.followup_months:
            s, lo, hi = survival_at(km, month_days(m))
            rows.append(_row(analysis, f"km_reoffended_{m}m", counts, 1 - s, 1 - hi, 1 - lo,
                             unit="proportion", arm=arm))
            c = _step_at(cif, month_days(m))
            rows.append(_row(analysis, f"cuminc_{m}m", counts, *c, unit="proportion", arm=arm,
                             note="Aalen-Johansen, death as competing risk"))
    for arm, mask in (("treated", g == 1), ("comparison", g == 0)):
        first = frame.loc[mask & (e == 1), "same_victim"].astype(bool)
        rows.append(_row(analysis, "same_victim_share", counts,
                         first.mean() if len(first) else np.nan, unit="proportion", arm=arm,
                         note="share of first reoffences against the victim of the "
                         "qualifying offence"))
    for m in cfg.followup_months:
        tau = month_days(m)
        if min(t[g == 1].max(), t[g == 0].max()) < tau:
            rows.append(_row(analysis, f"rmst_diff_{m}m", counts, np.nan, unit="days",
                             note="follow-up shorter than the window"))
            continue
        r = rmst_difference(t, e, g, tau)
        rows.append(_row(analysis, f"rmst_diff_{m}m", counts, r["diff"], r["lower"], r["upper"],
                         r["p"], unit="days", note="treated minus comparison; more is better"))
        rows.append(_row(analysis, f"rmst_{m}m", counts, r["rmst_1"],
                         r["rmst_1"] - 1.96 * r["se_1"], r["rmst_1"] + 1.96 * r["se_1"],
                         unit="days", arm="treated"))
        rows.append(_row(analysis, f"rmst_{m}m", counts, r["rmst_0"],
                         r["rmst_0"] - 1.96 * r["se_0"], r["rmst_0"] + 1.96 * r["se_0"],
                         unit="days", arm="comparison"))
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def _step_at(curve: pd.DataFrame, t: float) -> tuple[float, float, float]:
    """Value of a right-continuous step curve (time, cif, lower, upper) at time ``t``."""
    before = curve[curve["time"] <= t]
    if before.empty:
        return 0.0, 0.0, 0.0
    last = before.iloc[-1]
    return float(last["cif"]), float(last["lower"]), float(last["upper"])


def finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
