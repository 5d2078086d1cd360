"""Hypothesis strategies for small, degenerate cohort frames, and the estimability rule.

The rule under test (issue 9): every estimate row either holds a finite estimate (and, where a
confidence interval is given, both finite bounds), or is marked not estimable with a
machine-readable reason. Nothing is nan or inf without that mark, and nothing raises.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from pipeline.config import load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config" / "evaluation.yaml")
# rows say why in ``reason`` (older tables: in ``note``)
NOT_ESTIMABLE_NOTE = re.compile(r"not estimable|empty|shorter than|no events|constant|"
                                r"separation|too few|nobody", re.IGNORECASE)
EVENTS = ("random", "none", "all", "none_treated", "none_comparison")
TIMES = ("random", "day0", "short")


def rule_violations(table: pd.DataFrame) -> list[str]:
    """Rows that break the rule, as 'measure[arm]: what' (no data values)."""
    if table.empty:
        return ["no rows at all"]
    est = table["estimate"].to_numpy(float)
    lo, hi = table["lower"].to_numpy(float), table["upper"].to_numpy(float)
    p = table["p"].to_numpy(float)
    if "reason" in table:  # the lead's rule: a non-empty machine-readable reason
        marked = table["reason"].fillna("").astype(str).str.strip().ne("")
    else:
        marked = np.isnan(est) & table["note"].fillna("").str.contains(NOT_ESTIMABLE_NOTE)
    marked = np.asarray(marked, bool)
    problems = {
        "estimate not finite": ~np.isfinite(est),
        "infinite bound or p": np.isinf(lo) | np.isinf(hi) | np.isinf(p),
        "half-open interval": np.isnan(lo) != np.isnan(hi),
        "p outside [0, 1]": (p < 0) | (p > 1),
    }
    out = []
    for what, bad in problems.items():
        for i in np.flatnonzero(bad & ~marked):
            out.append(f"{table['measure'].iat[i]}[{table['arm'].iat[i]}]: {what}")
    return out


@st.composite
def cohort_frames(draw, *, min_size: int = 4, max_size: int = 30) -> pd.DataFrame:
    """A treated-vs-comparison cohort frame as ``frames.cohort_frame`` returns it: both arms
    present, with degenerate event, time, covariate and site patterns drawn on purpose."""
    n = draw(st.integers(min_size, max_size))
    n_t = draw(st.integers(1, n - 1))
    treated = np.r_[np.ones(n_t, int), np.zeros(n - n_t, int)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    times = draw(st.sampled_from(TIMES))
    time = {"random": rng.integers(1, 1200, n), "day0": np.zeros(n, int),
            "short": rng.integers(1, 200, n)}[times].astype(float)
    events = draw(st.sampled_from(EVENTS))
    event = {"random": rng.random(n) < 0.4, "none": np.zeros(n, bool),
             "all": np.ones(n, bool), "none_treated": (rng.random(n) < 0.5) & (treated == 0),
             "none_comparison": (rng.random(n) < 0.5) & (treated == 1)}[events]
    event &= time > 0  # nobody has an event on their index date
    died = ~event & (rng.random(n) < draw(st.sampled_from([0.0, 0.2, 1.0])))
    constant = draw(st.sampled_from(["none", "sex", "prior_custody", "age_in_comparison"]))
    separated = draw(st.booleans())
    frame = pd.DataFrame({
        "unit_id": [f"u{i}" for i in range(n)], "person_key": [f"PK{i:016X}" for i in range(n)],
        "arm": np.where(treated == 1, "treated", "comparison"), "treated": treated,
        "time_days": time, "event": event.astype(int), "died": died,
        "same_victim": event & (rng.random(n) < 0.5),
        "site": draw(st.sampled_from([np.array(["SITE_A"] * n),
                                      rng.choice(["SITE_A", "SITE_B"], n)])),
        "age": rng.integers(18, 70, n).astype(float),
        "prior_sh": rng.poisson(1, n), "prior_violence": treated if separated
        else rng.poisson(0.5, n), "prior_other": rng.poisson(1, n),
        "prior_sh_convictions": rng.poisson(0.5, n),
        "prior_custody": rng.random(n) < 0.3,
        "days_since_qualifying": rng.integers(14, 365, n).astype(float),
        "sex": rng.choice(["M", "F"], n, p=[0.8, 0.2]),
        "victim_relationship": rng.choice(["ex_partner", "acquaintance", "stranger"], n)})
    if constant == "sex":
        frame["sex"] = "M"
    elif constant == "prior_custody":
        frame["prior_custody"] = False
    elif constant == "age_in_comparison":
        frame.loc[frame["treated"] == 0, "age"] = 30.0
    return frame


@st.composite
def treated_frames(draw) -> pd.DataFrame:
    """Treated people from the landmark (``treated_only.landmark_frame``): completion and dose
    may be constant, assessment levels may have a single member."""
    frame = draw(cohort_frames(min_size=3, max_size=25))
    frame = frame.assign(treated=1, arm="treated")
    n = len(frame)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    completion = draw(st.sampled_from(["random", "none", "all"]))
    completed = {"random": rng.random(n) < 0.5, "none": np.zeros(n, bool),
                 "all": np.ones(n, bool)}[completion]
    dose = draw(st.sampled_from(["random", "uniform"]))
    sessions = rng.integers(1, 21, n) if dose == "random" else np.full(n, 12)
    srp = rng.choice(["rejected", "intimacy_seeking"], n)
    srp[0] = draw(st.sampled_from(["rejected", "predatory"]))  # possibly a level of size 1
    return frame.assign(
        completed_by_landmark=completed.astype(int), sessions_by_landmark=sessions,
        dose=sessions / 5, srp_type=srp, risk_rating=rng.choice(["low", "high"], n),
        personality_disorder=rng.random(n) < 0.3, psychosis=rng.random(n) < 0.1,
        substance_misuse=rng.random(n) < 0.3)
