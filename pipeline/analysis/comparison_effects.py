"""Effect estimates of one treated-vs-comparison analysis as rows of the tidy estimates table.

One function, ``effect_rows``, turns an analysis frame (treated rows and comparison rows with
``time_days``, ``event``, the 12/24-month binary outcomes and optionally weights and clusters)
into rows of ``ESTIMATE_COLUMNS``:

* ``hr`` (Cox, unadjusted within the matched or weighted sample; robust or cluster-robust SE
  via ``survival_results.cox_rows``) and, on request, ``hr_adjusted`` (covariates added);
* ``risk_{m}m`` per arm, ``rd_{m}m``, ``rr_{m}m`` and ``per100_diff_{m}m`` among people with
  full follow-up to the window (``pipeline.comparison.risk_difference_ratio``: sandwich SEs
  summed within clusters);
* ``rmst_diff_{m}m`` in days, from bootstrap replicates when given (weights or pairing), else
  the Greenwood-type SE of ``pipeline.survival.rmst_difference``;
* ``evalue_hr`` and ``evalue_hr_ci`` (VanderWeele & Ding; the HR is converted for a common
  outcome when the comparison arm's risk by the last window is 15% or more) and ``mde_hr``,
  the smallest protective HR detectable with 80% power (Schoenfeld) at the analysis's size.

Counts on every row are unweighted people (rows with positive weight) and events; binary rows
count the people with full follow-up and their events by the window.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analysis.estimability import enforce
from pipeline.analysis.estimates import month_days
from pipeline.analysis.survival_bootstrap import CurveBootstrap
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS, _row, cox_rows, not_estimable
from pipeline.comparison import (
    effective_sample_size,
    evalue,
    minimum_detectable_hr,
    natural_frequencies,
    risk_difference_ratio,
)
from pipeline.config import EvaluationConfig
from pipeline.survival import rmst_difference

COMMON_OUTCOME = 0.15  # VanderWeele: above this risk an HR is not read as a risk ratio
ALL_MEASURES = frozenset({"hr", "risk", "rmst", "evalue", "mde"})


def counts(frame: pd.DataFrame, weights_col: str | None = None,
           event_col: str = "event") -> dict:
    """People (rows with positive weight) and events per arm."""
    pos = frame[weights_col] > 0 if weights_col else pd.Series(True, index=frame.index)
    t = (frame["treated"] == 1) & pos
    c = (frame["treated"] == 0) & pos
    ev = frame[event_col].astype(int)
    return {"n_treated": int(t.sum()), "n_comparison": int(c.sum()),
            "events_treated": int(ev[t].sum()), "events_comparison": int(ev[c].sum())}


def _arm_risk_ci(y: np.ndarray, w: np.ndarray, cluster: np.ndarray | None
                 ) -> tuple[float, float, float]:
    """Weighted risk of one arm with a sandwich (cluster-summed) normal 95% CI."""
    p = float(np.sum(w * y) / np.sum(w))
    psi = w * (y - p) / np.sum(w)
    if cluster is not None:
        psi = np.bincount(pd.factorize(cluster)[0], weights=psi)
    se = float(np.sqrt(np.sum(psi**2)))
    return p, max(0.0, p - 1.959964 * se), min(1.0, p + 1.959964 * se)


def risk_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str,
              weights_col: str | None, cluster_col: str | None) -> list[dict]:
    """Risks, risk difference and ratio by each window among people with full follow-up."""
    rows: list[dict] = []
    for m in cfg.followup_months:
        full = frame[frame[f"full_{m}m"].astype(bool)]
        if weights_col:
            full = full[full[weights_col] > 0]
        c = counts(full, None, f"event_{m}m")
        if c["n_treated"] == 0 or c["n_comparison"] == 0:
            rows += [not_estimable(analysis, f"{k}_{m}m", c, "no_followup_to_window",
                                   unit="ratio" if k == "rr" else "proportion")
                     for k in ("rd", "rr")]
            rows += [not_estimable(analysis, f"risk_{m}m", c, "no_followup_to_window",
                                   unit="proportion", arm=arm)
                     for arm in ("treated", "comparison")]
            continue
        y = full[f"event_{m}m"].to_numpy(float)
        t = full["treated"].to_numpy(int)
        w = full[weights_col].to_numpy(float) if weights_col else np.ones(len(full))
        cl = full[cluster_col].to_numpy() if cluster_col else None
        res = risk_difference_ratio(y, t, w, cluster=cl)
        for arm, mask in (("treated", t == 1), ("comparison", t == 0)):
            est, lo, hi = _arm_risk_ci(y[mask], w[mask], None if cl is None else cl[mask])
            rows.append(_row(analysis, f"risk_{m}m", c, est, lo, hi, unit="proportion",
                             arm=arm, note=f"reoffended within {m} months; full follow-up"))
        rd, rr = res["rd"], res["rr"]
        rows.append(_row(analysis, f"rd_{m}m", c, rd.estimate, rd.ci_low, rd.ci_high,
                         rd.p_value, unit="proportion", note="treated minus comparison"))
        rr_problem = "no_events" if c["events_treated"] + c["events_comparison"] == 0 else \
            "no_events_in_arm" if min(c["events_treated"], c["events_comparison"]) == 0 else ""
        rows.append(not_estimable(analysis, f"rr_{m}m", c, rr_problem, unit="ratio")
                    if rr_problem else
                    _row(analysis, f"rr_{m}m", c, rr.estimate, rr.ci_low, rr.ci_high,
                         rr.p_value, unit="ratio", note="treated / comparison"))
        nf = natural_frequencies(res["risk_treated"], res["risk_control"])
        rows.append(_row(analysis, f"per100_diff_{m}m", c, nf["difference"], 100 * rd.ci_low,
                         100 * rd.ci_high, rd.p_value, unit="people per 100",
                         note=f"{nf['direction']} reoffending per 100 treated; "
                              f"{nf['treated_rounded']} vs {nf['control_rounded']} of 100"))
    return rows


def rmst_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str, c: dict,
              boot: CurveBootstrap | None, weights_col: str | None) -> list[dict]:
    """RMST differences (days, treated minus comparison) to each window."""
    rows = []
    t = frame["time_days"].to_numpy(float)
    g = frame["treated"].to_numpy(int)
    for m in cfg.followup_months:
        tau = month_days(m)
        if min(t[g == 1].max(), t[g == 0].max()) < tau:
            rows.append(not_estimable(analysis, f"rmst_diff_{m}m", c, "no_followup_to_window",
                                      unit="days"))
            continue
        if boot is not None:
            r = boot.rmst_difference(tau)
            note = f"bootstrap ({len(boot.reps)} resamples), percentile CI"
        elif weights_col is None or frame[weights_col].nunique() == 1:
            try:
                r = rmst_difference(t, frame["event"].to_numpy(int), g, tau)
            except ValueError:
                rows.append(not_estimable(analysis, f"rmst_diff_{m}m", c, "no_events",
                                          unit="days"))
                continue
            note = "Greenwood-type SE"
        else:
            rows.append(not_estimable(analysis, f"rmst_diff_{m}m", c, "needs_bootstrap",
                                      unit="days"))
            continue
        rows.append(_row(analysis, f"rmst_diff_{m}m", c, r["diff"], r["lower"], r["upper"],
                         r["p"], unit="days", note=f"treated minus comparison; {note}"))
    return rows


def sensitivity_rows(frame: pd.DataFrame, analysis: str, c: dict, hr_row: dict | None,
                     risk_last: float | None, weights_col: str | None) -> list[dict]:
    """E-value of the HR and its CI limit; the minimum detectable HR at 80% power."""
    rows = []
    hr_ok = hr_row is not None and not hr_row.get("reason") and np.isfinite(
        hr_row["estimate"]) and hr_row["estimate"] > 0 and np.isfinite(hr_row["upper"])
    if hr_row is not None and not hr_ok:
        rows += [not_estimable(analysis, m, c, "depends_on_not_estimable", unit="ratio")
                 for m in ("evalue_hr", "evalue_hr_ci")]
    if hr_ok:
        common = risk_last is not None and np.isfinite(risk_last) and risk_last >= COMMON_OUTCOME
        ev = evalue(hr_row["estimate"], hr_row["lower"], hr_row["upper"], measure="HR",
                    rare=not common)
        how = "HR converted for a common outcome" if common else "rare outcome: HR as RR"
        rows.append(_row(analysis, "evalue_hr", c, ev["evalue"], unit="ratio", note=how))
        rows.append(_row(analysis, "evalue_hr_ci", c, ev["evalue_ci"], unit="ratio",
                         note=f"confidence limit closer to 1; {how}"))
    t = frame["treated"] == 1
    w = frame[weights_col].to_numpy(float) if weights_col else np.ones(len(frame))
    n_t = effective_sample_size(w[t.to_numpy()])
    n_c = effective_sample_size(w[~t.to_numpy()])
    share = float(frame.loc[w > 0, "event"].mean()) if (w > 0).any() else np.nan
    if not (n_t > 0 and n_c > 0 and 0 < share <= 1):
        rows.append(not_estimable(analysis, "mde_hr", c, "no_events" if share == 0
                                  else "arm_empty", unit="ratio"))
    else:
        mde = minimum_detectable_hr(int(round(n_t)), int(round(n_c)), share)
        rows.append(_row(analysis, "mde_hr", c, mde, unit="ratio",
                         note="smallest protective HR detectable with 80% power (two-sided "
                              f"5%; Schoenfeld) at effective sizes {n_t:.0f} / {n_c:.0f}; "
                              f"harmful counterpart {1 / mde:.2f}"))
    return rows


def effect_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str, *,
                weights_col: str | None = None, cluster_col: str | None = None,
                boot: CurveBootstrap | None = None, adjust: bool = False,
                measures: Collection[str] = ALL_MEASURES, note: str = "",
                hr_se: tuple[float, str] | None = None) -> pd.DataFrame:
    """All effect rows of one analysis (see the module docstring); ``note`` is appended.

    ``hr_se`` = (SE of the log HR, how it was obtained) replaces the Cox model's SE in the
    ``hr`` row's CI and p (e.g. a bootstrap SE); the model-based row is kept as ``hr_robust``.
    """
    if weights_col is not None and (frame[weights_col] == 1).all():
        weights_col = None  # unit weights: the unweighted fit is the same and simpler
    c = counts(frame, weights_col)
    if c["n_treated"] == 0 or c["n_comparison"] == 0:
        return _finish([not_estimable(analysis, "hr", c, "arm_empty", unit="ratio")], note)
    data = frame if weights_col is None else frame[frame[weights_col] > 0]
    rows: list[dict] = []
    hr_row = None
    if "hr" in measures:
        for r in cox_rows(data, cfg, analysis, c, weights_col=weights_col,
                          cluster_col=cluster_col, adjust=adjust):
            if r["measure"] == "hr_unadjusted":
                r["measure"] = "hr"
                r["note"] = ("cluster-robust SE (matched sets)" if cluster_col
                             else r["note"]) + ("; weighted" if weights_col else "")
                if hr_se is not None and not r["reason"] and np.isfinite(hr_se[0]) \
                        and hr_se[0] > 0:
                    rows.append({**r, "measure": "hr_robust"})
                    r = _with_se(r, *hr_se)
                hr_row = r
            rows.append(r)
    risk_last = None
    if "risk" in measures:
        rr = risk_rows(data, cfg, analysis, weights_col, cluster_col)
        last = [r for r in rr if r["measure"] == f"risk_{cfg.followup_months[-1]}m"
                and r["arm"] == "comparison"]
        risk_last = last[0]["estimate"] if last else None
        rows += rr
    if "rmst" in measures:
        rows += rmst_rows(data, cfg, analysis, c, boot, weights_col)
    if risk_last is None or not np.isfinite(risk_last):  # fall back on the share with an
        # event for the E-value's rarity
        risk_last = float(data.loc[data["treated"] == 0, "event"].mean())
    if "evalue" in measures or "mde" in measures:
        extra = sensitivity_rows(data, analysis, c, hr_row, risk_last, weights_col)
        rows += [r for r in extra if r["measure"].split("_")[0] in measures]
    return _finish(rows, note)


def _with_se(row: dict, se: float, how: str) -> dict:
    """A ratio row with its 95% CI and p recomputed from another SE of the log estimate."""
    b = float(np.log(row["estimate"]))
    return {**row, "lower": float(np.exp(b - 1.959964 * se)),
            "upper": float(np.exp(b + 1.959964 * se)),
            "p": float(2 * stats.norm.sf(abs(b) / se)), "note": f"{how}; {row['note']}"}


def _finish(rows: list[dict], note: str) -> pd.DataFrame:
    out = enforce(pd.DataFrame(rows, columns=ESTIMATE_COLUMNS))
    if note:
        out["note"] = [f"{n}; {note}" if n else note for n in out["note"]]
    return out
