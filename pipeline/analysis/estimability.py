"""One rule for every estimate: it computes, or it is a row marked not estimable with a reason.

The tidy estimates tables (``ESTIMATE_COLUMNS``) carry a ``reason`` column. It is empty for an
estimate that was computed, and otherwise holds one code of ``REASONS``: a machine-readable
cause that the report turns into a plain-language sentence. A not-estimable row never carries
a number (estimate, limits and p are NaN), so nothing downstream can publish a value from a
model that could not be fitted.

``enforce`` is applied to every estimates table before it is written: it blanks the numbers of
rows that have a reason, and gives a reason to rows whose numbers are not usable (a non-finite
estimate; a ratio of 0, infinity or beyond 1e4 either way; a confidence interval with a
missing or infinite limit where one is published), so that the
rule holds even where an analysis function did not foresee a shape of data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# code -> plain-language explanation (completes "could not be estimated because …")
REASONS: dict[str, str] = {
    "arm_empty": "one of the groups has nobody in it",
    "no_events": "nobody in the analysis reoffended in the follow-up",
    "no_events_in_arm": "nobody in one of the groups reoffended in the follow-up",
    "all_events": "everyone in the analysis reoffended, so there is no contrast over time",
    "no_followup": "nobody had any follow-up after the start date",
    "no_followup_to_window": "nobody in one of the groups was followed for the whole window",
    "median_not_reached": "fewer than half of the group reoffended during follow-up",
    "constant_exposure": "everyone had the same exposure, so there is nothing to compare",
    "no_exposure_contrast": "nobody (or everybody) in the group had the exposure",
    "separation": "the measured characteristics separate the groups completely",
    "too_few_matched": "too few treated people could be matched to a comparison person",
    "single_level": "the subgroup variable has a single level in this extract",
    "no_interaction_contrast": "the treatment contrast exists in fewer than two subgroup "
                               "levels",
    "no_variation": "the groups do not differ in this characteristic's spread",
    "model_not_fitted": "the statistical model could not be fitted to these data",
    "over_size_bound": "the extract is too large for this analysis on one machine (it needs "
                       "more rows than the configured bound)",
    "degenerate_fit": "the model gave a ratio of zero or infinity, which is not informative",
    "unbounded_interval": "the confidence interval has no finite limit",
    "needs_bootstrap": "it needs bootstrap resamples, which the configuration turned off",
    "depends_on_not_estimable": "the estimate it is derived from could not be estimated",
    "non_finite_result": "the calculation gave no finite value",
}

NUMBER_COLUMNS = ("estimate", "lower", "upper", "p")
# measures that are published with a confidence interval: without finite limits they are not
# estimates (e.g. a hazard ratio whose robust SE came out NaN)
WITH_INTERVAL = ("hr", "rr_", "rd_", "risk_", "rmst_diff_", "km_reoffended_", "per100_diff_")
# a ratio further from 1 than this is a diverging model (monotone likelihood), not an estimate
EXTREME_RATIO = 1e4


def explain(reason: str) -> str:
    """Plain-language text of a reason code (the code itself if unknown)."""
    return REASONS.get(reason, reason.replace("_", " "))


def arm_problem(n_treated: int, n_comparison: int, events_treated: int,
                events_comparison: int) -> str:
    """The reason a treated-vs-comparison contrast cannot be estimated, or ''."""
    if n_treated == 0 or n_comparison == 0:
        return "arm_empty"
    if events_treated + events_comparison == 0:
        return "no_events"
    if events_treated == 0 or events_comparison == 0:
        return "no_events_in_arm"
    return ""


def _finite(values: pd.Series) -> np.ndarray:
    return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(float))


def enforce(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the rule to a tidy estimates table (returns a copy; see the module docstring)."""
    out = frame.copy()
    if "reason" not in out.columns:
        out["reason"] = ""
    reason = out["reason"].fillna("").astype(str)
    est = pd.to_numeric(out["estimate"], errors="coerce")
    lower = pd.to_numeric(out["lower"], errors="coerce")
    upper = pd.to_numeric(out["upper"], errors="coerce")
    ratio = out["unit"].eq("ratio").to_numpy()
    wants_ci = out["measure"].astype(str).str.startswith(WITH_INTERVAL).to_numpy()
    has_ci = (lower.notna() | upper.notna()).to_numpy() | wants_ci
    ci_infinite = has_ci & ~(_finite(lower) & _finite(upper))
    value = est.to_numpy(float)
    with np.errstate(invalid="ignore"):
        degenerate = ratio & _finite(est) & ((value <= 0) | (value > EXTREME_RATIO)
                                             | (value < 1 / EXTREME_RATIO))
    fallback = np.select(
        [~_finite(est), degenerate, ci_infinite],
        ["non_finite_result", "degenerate_fit", "unbounded_interval"], default="")
    reason = reason.where(reason != "", pd.Series(fallback, index=out.index))
    out["reason"] = reason
    blank = reason != ""
    for col in NUMBER_COLUMNS:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float).where(~blank)
    return out


def unexplained(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that break the rule (a non-finite estimate without a reason): for checks/tests."""
    est = pd.to_numeric(frame["estimate"], errors="coerce")
    return frame[~np.isfinite(est.to_numpy(float)) & frame["reason"].fillna("").eq("")]
