"""The pre-specified analysis plan (``analysis_plan`` in config/evaluation.yaml).

The plan fixes, before the data are looked at, what the verdict rests on: the primary outcome,
the estimand and the analysis that estimates it, the information the evaluation plans to reach
(events), how many monthly looks it expects, the error-spending rule and the effect it hopes
for. Its SHA-256 (of the parsed plan, so comments and layout do not count) is recorded with
every look; a change after the first look is kept, dated and flagged in the report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.plan.spending import SPENDING_FUNCTIONS

ESTIMANDS = {"att_started": "the average effect in everyone who started treatment (ATT)",
             "att_matched": "the average effect in treated people who could be matched",
             "ate": "the average effect had everyone eligible been treated (ATE)"}
# analyses whose hazard ratio may be primary or a sensitivity analysis: name -> (analysis, measure)
HR_SOURCES = {
    "weighted_risk_sets": ("weighted_risk_sets", "hr"),
    "weighted_risk_sets_per_protocol": ("weighted_risk_sets_per_protocol", "hr"),
    "matched": ("matched", "hr"), "weighted_att": ("weighted_att", "hr"),
    "weighted_ate": ("weighted_ate", "hr"), "weighted_ato": ("weighted_ato", "hr"),
    "weighted_att_trimmed": ("weighted_att_trimmed", "hr"),
    "matched_itt": ("matched_itt", "hr"),
    "matched_recorded_outcome": ("matched_recorded_outcome", "hr"),
    "matched_caliper_0.1": ("matched_caliper_0.1", "hr"),
    "matched_caliper_0.5": ("matched_caliper_0.5", "hr"),
    "naive_adjusted": ("naive", "hr_adjusted")}


@dataclass(frozen=True)
class AnalysisPlan:
    """The validated plan; defaults are those of the shipped configuration."""

    primary_outcome: str = "stalking_harassment"
    estimand: str = "att_started"
    primary_analysis: str = "weighted_risk_sets"
    planned_events: int = 400
    planned_looks: int = 24
    spending: str = "obrien_fleming"
    alpha: float = 0.05
    assumed_hr: float = 0.75
    power: float = 0.8
    repeated_ci: bool = True
    sensitivity_analyses: tuple[str, ...] = ("matched", "matched_itt", "naive_adjusted")

    @property
    def sha256(self) -> str:
        """Hash of the plan's content (canonical JSON): a change of any setting changes it."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def as_json(self) -> dict:
        out = asdict(self)
        out["sensitivity_analyses"] = list(self.sensitivity_analyses)
        return out


def parse_plan(raw: dict | None, src: str, main_family: str, families: dict,
               plausible_hr: float | None, error: type[Exception] = ValueError
               ) -> AnalysisPlan:
    """Validate the YAML mapping ``analysis_plan`` (every key optional).

    ``plausible_hr`` (the older ``analysis.plausible_hr``) is the assumed effect when the plan
    does not give one; the two must agree when both are given. Errors name the key and the fix.
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise error(f"{src}: 'analysis_plan' must be a mapping of settings")
    d = AnalysisPlan(primary_outcome=main_family)
    known = set(d.as_json())
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(f"{src}: analysis_plan has unknown keys {unknown}; choose from "
                    f"{', '.join(sorted(known))}")

    def get(key: str, kind: type | tuple, default: Any) -> Any:
        value = raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise error(f"{src}: 'analysis_plan.{key}' must be "
                        f"{getattr(kind, '__name__', 'a number')}, got {type(value).__name__}")
        return value

    outcome = get("primary_outcome", str, d.primary_outcome)
    if outcome not in families:
        raise error(f"{src}: analysis_plan.primary_outcome '{outcome}' is not one of "
                    f"{list(families)}")
    if outcome != main_family:
        raise error(f"{src}: analysis_plan.primary_outcome must be outcomes.main_family "
                    f"('{main_family}'): the headline analyses that family")
    estimand = get("estimand", str, d.estimand)
    if estimand not in ESTIMANDS:
        raise error(f"{src}: analysis_plan.estimand must be one of {', '.join(ESTIMANDS)}")
    primary = get("primary_analysis", str, d.primary_analysis)
    sens = tuple(get("sensitivity_analyses", list, list(d.sensitivity_analyses)))
    for name in (primary, *sens):
        if name not in HR_SOURCES:
            raise error(f"{src}: analysis_plan analysis '{name}' is unknown; choose from "
                        f"{', '.join(HR_SOURCES)}")
    if primary in sens:
        raise error(f"{src}: analysis_plan.sensitivity_analyses must not repeat the primary "
                    "analysis")
    spending = get("spending", str, d.spending)
    if spending not in SPENDING_FUNCTIONS:
        raise error(f"{src}: analysis_plan.spending must be one of "
                    f"{', '.join(SPENDING_FUNCTIONS)}")
    events = get("planned_events", int, d.planned_events)
    looks = get("planned_looks", int, d.planned_looks)
    alpha = float(get("alpha", (int, float), d.alpha))
    power = float(get("power", (int, float), d.power))
    hr = get("assumed_hr", (int, float), None)
    if hr is not None and plausible_hr is not None and abs(float(hr) - plausible_hr) > 1e-12:
        raise error(f"{src}: analysis_plan.assumed_hr and analysis.plausible_hr differ; keep "
                    "one (analysis_plan.assumed_hr)")
    hr = float(hr if hr is not None else plausible_hr if plausible_hr is not None
               else d.assumed_hr)
    checks = [(events >= 10, "planned_events must be a whole number of events, at least 10"),
              (looks >= 1, "planned_looks must be at least 1"),
              (0 < alpha < 0.5, "alpha must lie between 0 and 0.5 (two-sided)"),
              (0.5 <= power < 1, "power must lie between 0.5 and 1"),
              (0 < hr < 1, "assumed_hr must lie between 0 and 1 (a protective hazard ratio)")]
    for ok, message in checks:
        if not ok:
            raise error(f"{src}: analysis_plan.{message}")
    return AnalysisPlan(primary_outcome=outcome, estimand=estimand, primary_analysis=primary,
                        planned_events=events, planned_looks=looks, spending=spending,
                        alpha=alpha, assumed_hr=hr, power=power,
                        repeated_ci=bool(get("repeated_ci", bool, d.repeated_ci)),
                        sensitivity_analyses=sens)
