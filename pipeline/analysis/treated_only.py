"""Treated-only contrasts: completers vs non-completers and dose-response, from a landmark.

Completion and the number of sessions are only known once treatment has run its course, so
comparing completers with non-completers from the index date would credit completers with the
time they had to stay offence-free to complete (immortal time). Both contrasts therefore start
at a landmark (``landmark_days`` after index): people who reoffended, died or were censored
before it are left out, and exposure is what was known by then. Time from the landmark is
counted as in the main analysis: days at liberty (custody days after the landmark removed)
unless the configuration counts custody as time at risk.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.estimability import arm_problem, enforce
from pipeline.analysis.frames import cohort_frame
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS, _row, design, not_estimable
from pipeline.config import EvaluationConfig
from pipeline.survival import fit_cox

DOSE_STEP = 5  # hazard ratio reported per this many sessions attended


def landmark_frame(con: duckdb.DuckDBPyConnection, extract_id: str,
                   cfg: EvaluationConfig, cohort: pd.DataFrame | None = None) -> pd.DataFrame:
    """Treated people still event-free and followed at the landmark, with exposure by then.

    ``cohort``: the main cohort's frame (``cohort_frame`` with the configured family and
    proof) when the caller has read it already; it is read here otherwise."""
    frame = cohort_frame(con, extract_id, cfg) if cohort is None else cohort
    frame = frame[frame["arm"] == "treated"]
    lm = cfg.landmark_days
    exposure = con.execute(f"""
        SELECT u.unit_id,
               count(s.session_key) FILTER (WHERE s.attended AND s.session_type = 'treatment'
                   AND s.session_date < u.index_date + {lm}) AS sessions_by_landmark,
               coalesce(any_value(p.discharge_reason) = 'completed'
                   AND any_value(p.treatment_discharge_date) <= any_value(u.index_date) + {lm},
                   FALSE) AS completed_by_landmark
        FROM analysis.units u
        JOIN analysis.persons p USING (extract_id, person_key)
        LEFT JOIN staging.clinic_sessions s ON s._extract_id = u.extract_id
             AND s.referral_key = p.treatment_referral_key
        WHERE u.extract_id = ? AND u.cohort = 'started' AND u.arm = 'treated'
        GROUP BY u.unit_id""", [extract_id]).df()
    frame = frame.merge(exposure, on="unit_id", how="left")
    frame = frame[frame["calendar_days"] > lm].copy()
    if cfg.custody_time_at_risk:
        frame["time_days"] = frame["calendar_days"] - lm
    else:  # at liberty after the landmark: total days at liberty less those before it
        before = _custody_before(con, extract_id, lm)
        frame["time_days"] = frame["time_days"] - (
            lm - frame["unit_id"].map(before).fillna(0).to_numpy(float))
    frame["completed_by_landmark"] = frame["completed_by_landmark"].astype(int)
    frame["dose"] = frame["sessions_by_landmark"] / DOSE_STEP
    return frame


def _custody_before(con: duckdb.DuckDBPyConnection, extract_id: str, lm: int) -> pd.Series:
    """Days in custody between each treated unit's index date and its landmark."""
    from pipeline.cohort.build import prepare_views

    prepare_views(con, extract_id)
    days = con.execute(f"""
        SELECT u.unit_id, sum(greatest(0, least(k.end_date, u.index_date + {lm})
                                          - greatest(k.start_date, u.index_date))) AS days
        FROM analysis.units u JOIN custody k ON k.person_key = u.person_key
             AND k.start_date < u.index_date + {lm} AND k.end_date > u.index_date
        WHERE u.extract_id = ? AND u.cohort = 'started' AND u.arm = 'treated'
        GROUP BY u.unit_id""", [extract_id]).df()
    return days.set_index("unit_id")["days"].astype(float)


ASSESSMENT = ("srp_type", "risk_rating")
ASSESSMENT_FLAGS = ("personality_disorder", "psychosis", "substance_misuse")


def treated_design(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """Index-date covariates plus the clinic assessment (known for treated people only):
    typology and risk level as categories, clinical flags as 0/1; constant columns dropped."""
    from pipeline.comparison.propensity import DesignSpec

    x = design(frame, cfg, exclude=("site",))
    known = [c for c in ASSESSMENT if frame[c].notna().all()]
    if known:
        spec = DesignSpec.from_data(frame, [], known)
        x = x.join(spec.frame(frame).drop(columns="const"))
    for flag in ASSESSMENT_FLAGS:
        if frame[flag].notna().all():
            x[flag] = frame[flag].astype(float)
    return x.loc[:, x.std(ddof=0) > 0]


def _exposure_problem(frame: pd.DataFrame, exposure: str, counts: dict) -> str:
    """Why the exposure contrast cannot be estimated, or ''."""
    if frame.empty:
        return "no_followup_to_window"
    if exposure == "dose":
        if frame["dose"].nunique() < 2:
            return "constant_exposure"
        return "no_events" if counts["events_treated"] == 0 else ""
    problem = arm_problem(**counts)
    return "no_exposure_contrast" if problem == "arm_empty" else problem


def treated_only_estimates(frame: pd.DataFrame, cfg: EvaluationConfig) -> pd.DataFrame:
    """Adjusted Cox HRs for completing (vs not) and per DOSE_STEP sessions, from the landmark.

    These are associations within the treated group, not effects of completing or of more
    sessions: who completes or attends more is not random. A contrast with nobody (or
    everybody) exposed, a constant dose or no events is a not-estimable row with its reason.
    """
    rows = []
    x = treated_design(frame, cfg) if len(frame) else pd.DataFrame()
    for measure, exposure, label in (
            ("hr_completers", "completed_by_landmark", "completers vs non-completers"),
            ("hr_per_5_sessions", "dose", f"per {DOSE_STEP} sessions attended")):
        comp = frame[exposure] > 0 if exposure == "completed_by_landmark" else None
        counts = {"n_treated": int(comp.sum()) if comp is not None else len(frame),
                  "n_comparison": int((~comp).sum()) if comp is not None else 0,
                  "events_treated": int(frame.loc[comp, "event"].sum())
                  if comp is not None else int(frame["event"].sum()),
                  "events_comparison": int(frame.loc[~comp, "event"].sum())
                  if comp is not None else 0}
        note = (f"association within the treated, {label}; landmark {cfg.landmark_days} "
                "days; adjusted, including the clinic assessment")
        problem = _exposure_problem(frame, exposure, counts)
        if problem:
            rows.append(not_estimable("treated_only", measure, counts, problem, unit="ratio",
                                      note=note))
            continue
        data = pd.concat([frame[["time_days", "event", exposure]], x], axis=1)
        try:
            res = fit_cox(data, "time_days", "event", [exposure, *x.columns], robust=True,
                          compute_concordance=False)
            s = res.summary.loc[exposure]
            rows.append(_row("treated_only", measure, counts, s["hr"], s["lower"], s["upper"],
                             s["p"], unit="ratio", note=note))
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            rows.append(not_estimable("treated_only", measure, counts, "model_not_fitted",
                                      unit="ratio", note=note))
    return enforce(pd.DataFrame(rows, columns=ESTIMATE_COLUMNS))
