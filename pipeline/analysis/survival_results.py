"""Survival contrasts of treated vs comparison as a tidy table of estimates.

One function turns a cohort frame (``frames.cohort_frame``) into rows of (measure, estimate,
lower, upper, p) for one analysis: log-rank, Cox hazard ratios (unadjusted and adjusted, robust
or cluster-robust, optionally stratified by site) with proportional-hazards diagnostics,
restricted mean survival time differences, Kaplan-Meier and competing-risk cumulative incidence
at each follow-up window, and medians. Every statistic comes from ``pipeline.survival``, which
is tested against R.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.analysis.estimability import arm_problem, enforce
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
                    "n_treated", "n_comparison", "events_treated", "events_comparison", "note",
                    "reason"]


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
         note: str = "", reason: str = "") -> dict:
    """One row of ``ESTIMATE_COLUMNS``; ``reason`` (a code of ``estimability.REASONS``) marks
    the estimate as not estimable, and its numbers are then blanked by ``enforce``."""
    return {"analysis": analysis, "measure": measure, "arm": arm, "estimate": float(estimate),
            "lower": float(lower), "upper": float(upper), "p": float(p), "unit": unit,
            **counts, "note": note, "reason": reason}


def not_estimable(analysis: str, measure: str, counts: dict, reason: str, unit: str = "",
                  arm: str = "", note: str = "") -> dict:
    """A row that says why ``measure`` could not be estimated (no numbers)."""
    return _row(analysis, measure, counts, np.nan, unit=unit, arm=arm, note=note,
                reason=reason)


def _counts(frame: pd.DataFrame) -> dict:
    t = frame["treated"] == 1
    return {"n_treated": int(t.sum()), "n_comparison": int((~t).sum()),
            "events_treated": int(frame.loc[t, "event"].sum()),
            "events_comparison": int(frame.loc[~t, "event"].sum())}


def cox_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str, counts: dict, *,
             weights_col: str | None = None, cluster_col: str | None = None,
             adjust: bool = True) -> list[dict]:
    """Hazard ratio of treatment, unadjusted and adjusted, with robust SEs and PH diagnostics;
    a not-estimable row (with the reason) where an arm is empty or has no events, or the
    model cannot be fitted."""
    rows = []
    strata = ["site"] if cfg.stratify_by_site and frame["site"].nunique() > 1 else None
    specs = [("hr_unadjusted", pd.DataFrame(index=frame.index), None)]
    if adjust:
        specs.append(("hr_adjusted", design(frame, cfg, exclude=("site",) if strata else ()),
                      strata))
    problem = arm_problem(**counts)
    for measure, x, st in specs:
        if problem:
            rows.append(not_estimable(analysis, measure, counts, problem, unit="ratio"))
            continue
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
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            rows.append(not_estimable(analysis, measure, counts, "model_not_fitted",
                                      unit="ratio"))
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
            except (ValueError, np.linalg.LinAlgError, KeyError, FloatingPointError):
                rows.append(not_estimable(analysis, "ph_test_treated", counts,
                                          "model_not_fitted", unit="chi2"))
    return rows


def _arm_rows(analysis: str, counts: dict, cfg: EvaluationConfig, arm: str, t: np.ndarray,
              e: np.ndarray, status: np.ndarray, same_victim: pd.Series) -> list[dict]:
    """Median, KM and cumulative incidence by each window, same-victim share: one arm."""
    rows = []
    if t.size == 0:
        measures = ["median_days", "same_victim_share"] + [
            f"{k}_{m}m" for m in cfg.followup_months for k in ("km_reoffended", "cuminc")]
        return [not_estimable(analysis, m, counts, "arm_empty", arm=arm) for m in measures]
    km = kaplan_meier(t, e)
    med = median_survival(km)
    if np.isfinite(med[0]):
        rows.append(_row(analysis, "median_days", counts, *med, unit="days", arm=arm))
    else:
        rows.append(not_estimable(analysis, "median_days", counts, "median_not_reached",
                                  unit="days", arm=arm))
    cif = cumulative_incidence(t, status, cause=1)
    for m in cfg.followup_months:
        tau = month_days(m)
        if t.max() < tau:
            for measure in (f"km_reoffended_{m}m", f"cuminc_{m}m"):
                rows.append(not_estimable(analysis, measure, counts, "no_followup_to_window",
                                          unit="proportion", arm=arm))
            continue
        s, lo, hi = survival_at(km, tau)
        rows.append(_row(analysis, f"km_reoffended_{m}m", counts, 1 - s, 1 - hi, 1 - lo,
                         unit="proportion", arm=arm))
        rows.append(_row(analysis, f"cuminc_{m}m", counts, *_step_at(cif, tau),
                         unit="proportion", arm=arm,
                         note="Aalen-Johansen, death as competing risk"))
    first = same_victim[e == 1].astype(bool)
    note = "share of first reoffences against the victim of the qualifying offence"
    rows.append(_row(analysis, "same_victim_share", counts, first.mean(), unit="proportion",
                     arm=arm, note=note) if len(first) else
                not_estimable(analysis, "same_victim_share", counts, "no_events_in_arm",
                              unit="proportion", arm=arm, note=note))
    return rows


def survival_contrast(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str,
                      adjust: bool = True) -> pd.DataFrame:
    """All unweighted survival estimates of one treated-vs-comparison analysis; every
    measure either computes or is a not-estimable row with its reason."""
    counts = _counts(frame)
    t, e, g = frame["time_days"].to_numpy(float), frame["event"].to_numpy(int), \
        frame["treated"].to_numpy(int)
    problem = arm_problem(**counts)
    rows: list[dict] = []
    if problem == "arm_empty":
        return enforce(pd.DataFrame([not_estimable(analysis, "hr_unadjusted", counts, problem,
                                                   unit="ratio")], columns=ESTIMATE_COLUMNS))
    if problem == "no_events":
        rows.append(not_estimable(analysis, "logrank", counts, problem, unit="chi2"))
    else:
        try:
            lr = logrank_test(t, e, g)
            rows.append(_row(analysis, "logrank", counts, lr.chi2, p=lr.p, unit="chi2"))
        except ValueError:  # events only while one group was at risk
            rows.append(not_estimable(analysis, "logrank", counts, "model_not_fitted",
                                      unit="chi2"))
    cluster = "person_key" if frame["person_key"].duplicated().any() else None
    rows += cox_rows(frame, cfg, analysis, counts, cluster_col=cluster, adjust=adjust)
    status = np.where(e == 1, 1, np.where(frame["died"].to_numpy(bool), 2, 0))
    same_victim = frame["same_victim"].reset_index(drop=True)
    for arm, mask in (("treated", g == 1), ("comparison", g == 0)):
        rows += _arm_rows(analysis, counts, cfg, arm, t[mask], e[mask], status[mask],
                          same_victim[mask])
    for m in cfg.followup_months:
        rows += rmst_rows_unweighted(analysis, counts, t, e, g, month_days(m), m)
    return enforce(pd.DataFrame(rows, columns=ESTIMATE_COLUMNS))


def rmst_rows_unweighted(analysis: str, counts: dict, t: np.ndarray, e: np.ndarray,
                         g: np.ndarray, tau: int, m: int) -> list[dict]:
    """RMST per arm and its difference to ``tau`` days (Greenwood-type SEs)."""
    if min(t[g == 1].max(), t[g == 0].max()) < tau:
        return [not_estimable(analysis, f"rmst_diff_{m}m", counts, "no_followup_to_window",
                              unit="days")]
    try:
        r = rmst_difference(t, e, g, tau)
    except ValueError:  # no event before tau: both means are tau, with no variance
        return [not_estimable(analysis, f"rmst_diff_{m}m", counts, "no_events", unit="days")]
    return [
        _row(analysis, f"rmst_diff_{m}m", counts, r["diff"], r["lower"], r["upper"], r["p"],
             unit="days", note="treated minus comparison; more is better"),
        _row(analysis, f"rmst_{m}m", counts, r["rmst_1"], r["rmst_1"] - 1.959964 * r["se_1"],
             r["rmst_1"] + 1.959964 * r["se_1"], unit="days", arm="treated"),
        _row(analysis, f"rmst_{m}m", counts, r["rmst_0"], r["rmst_0"] - 1.959964 * r["se_0"],
             r["rmst_0"] + 1.959964 * r["se_0"], unit="days", arm="comparison")]


def _step_at(curve: pd.DataFrame, t: float) -> tuple[float, float, float]:
    """Value of a right-continuous step curve (time, cif, lower, upper) at time ``t``."""
    before = curve[curve["time"] <= t]
    if before.empty:
        return 0.0, 0.0, 0.0
    last = before.iloc[-1]
    return float(last["cif"]), float(last["lower"]), float(last["upper"])
