"""The evaluation configuration (``config/evaluation.yaml``): loaded, validated, hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.contracts.schema import load_offence_codes
from pipeline.plan.spec import AnalysisPlan, parse_plan


class ConfigError(ValueError):
    """The evaluation config is invalid: the message names the file, key and the fix."""


Trim = str | tuple[float, float] | None  # None | "common_support" | (lo, hi) on the score


@dataclass(frozen=True)
class ComparisonConfig:
    """Treated-vs-comparison settings (``analysis.comparison`` in the YAML; all optional).

    Defaults: 1:1 nearest-neighbour matching on the logit of the propensity score within risk
    sets, caliper 0.2 SD of the logit (Austin 2011), without replacement, treated people in
    order of decreasing score (MatchIt's default; ``random`` uses ``analysis.seed``); no
    trimming in the main analyses; common-support trimming in the trimmed weighting
    sensitivity analysis; 200 bootstrap resamples; subgroups by typology, risk level, victim
    relationship and site; dose bands from 1, 10 and 16 sessions; balance threshold 0.1.
    """

    propensity_squares: tuple[str, ...] = ()
    trim: Trim = None
    k: int = 1
    caliper: float | None = 0.2
    replace: bool = False
    order: str = "largest"
    sensitivity_calipers: tuple[float, ...] = (0.1, 0.5)
    sensitivity_trim: Trim = "common_support"
    bootstrap_replicates: int = 200
    subgroups: tuple[str, ...] = ("srp_type", "risk_rating", "victim_relationship", "site")
    dose_bands: tuple[int, ...] = (1, 10, 16)
    balance_threshold: float = 0.1
    # risk sets: at most about this many candidate controls are drawn per trial (a known,
    # weighted random sample within (site, week) buckets); null keeps every eligible person
    max_controls_per_trial: int | None = 50


@dataclass(frozen=True)
class EvaluationConfig:
    """Validated evaluation settings; ``sha256`` identifies the exact file for provenance."""

    first_index_date: dt.date
    last_index_date: dt.date | None
    sites: tuple[str, ...]
    min_age: int
    qualifying_lookback_days: int
    risk_set_window_days: int
    main_family: str
    families: dict[str, tuple[str, ...]]
    proof: str
    grace_days: int
    followup_months: tuple[int, ...]
    custody_time_at_risk: bool
    min_treated: int
    seed: int
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]
    stratify_by_site: bool
    landmark_days: int
    disclosure: dict[str, Any]
    sha256: str
    source: str
    comparison: ComparisonConfig = field(default_factory=ComparisonConfig)
    # the effect the programme hopes for: an inconclusive result says whether the evaluation
    # was large enough to detect it
    plausible_hr: float = 0.75
    # the pre-specified analysis plan (``analysis_plan``): primary analysis, planned events,
    # error spending; ``plausible_hr`` mirrors its assumed effect
    plan: AnalysisPlan = field(default_factory=AnalysisPlan)

    def index_window_end(self, extraction_date: dt.date) -> dt.date:
        """Last index date: given, or leaving a month of follow-up before the censoring date."""
        if self.last_index_date:
            return self.last_index_date
        return extraction_date - dt.timedelta(days=self.grace_days + 30)


def _get(raw: dict, path: str, source: str, kind: type | tuple, default: Any = ...) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise ConfigError(f"{source}: missing key '{path}'; add it (see README)")
        node = node[part]
    if node is not None and not isinstance(node, kind):
        raise ConfigError(f"{source}: '{path}' must be {getattr(kind, '__name__', kind)}, "
                          f"got {type(node).__name__}")
    return node


KNOWN_COVARIATES = ("age", "sex", "ethnicity_group", "site", "days_since_qualifying",
                    "victim_relationship", "prior_sh", "prior_violence", "prior_other",
                    "prior_sh_convictions", "prior_custody")


def _covariates(raw: dict, key: str, src: str) -> tuple[str, ...]:
    names = tuple(_get(raw, key, src, list, []) or [])
    unknown = [c for c in names if c not in KNOWN_COVARIATES]
    if unknown:
        raise ConfigError(f"{src}: {key} has unknown covariates {unknown}; choose from "
                          f"{', '.join(KNOWN_COVARIATES)}")
    return names


def load_config(path: Path) -> EvaluationConfig:
    """Read and validate the YAML; every error names the key and what is expected."""
    path = Path(path)
    text = path.read_bytes()
    src = str(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{src}: not valid YAML ({exc.__class__.__name__})") from None
    codes = {c.code for c in load_offence_codes()}
    fams_raw = _get(raw, "outcomes.families", src, dict)
    families: dict[str, tuple[str, ...]] = {}
    for name, spec in fams_raw.items():
        chosen = tuple(sorted(codes)) if spec == "all" else tuple(spec)
        unknown = sorted(set(chosen) - codes)
        if unknown:
            raise ConfigError(f"{src}: outcomes.families.{name} has unknown offence codes "
                              f"{unknown}; use codes from data_contracts/offence_codes.yaml")
        families[name] = chosen
    main = _get(raw, "outcomes.main_family", src, str)
    if main not in families:
        raise ConfigError(f"{src}: outcomes.main_family '{main}' is not one of {list(families)}")
    proof = _get(raw, "outcomes.proof", src, str)
    if proof not in ("proven", "recorded"):
        raise ConfigError(f"{src}: outcomes.proof must be 'proven' or 'recorded'")
    months = tuple(_get(raw, "outcomes.followup_months", src, list))
    if not months or any(not isinstance(m, int) or m <= 0 for m in months):
        raise ConfigError(f"{src}: outcomes.followup_months must be positive whole months")
    ints = {k: _get(raw, k, src, int) for k in (
        "study.min_age", "study.qualifying_lookback_days", "study.risk_set_window_days",
        "outcomes.grace_days", "analysis.min_treated", "analysis.seed")}
    for key, value in ints.items():
        if value < 0:
            raise ConfigError(f"{src}: '{key}' must not be negative")
    given_hr = _plausible_hr(raw, src) if _get(raw, "analysis.plausible_hr", src,
                                                (int, float), None) is not None else None
    plan = parse_plan(raw.get("analysis_plan"), src, main, families, given_hr, ConfigError)
    return EvaluationConfig(
        first_index_date=_get(raw, "study.first_index_date", src, dt.date),
        last_index_date=_get(raw, "study.last_index_date", src, dt.date, None),
        sites=tuple(_get(raw, "study.sites", src, list)),
        min_age=ints["study.min_age"],
        qualifying_lookback_days=ints["study.qualifying_lookback_days"],
        risk_set_window_days=ints["study.risk_set_window_days"],
        main_family=main, families=families, proof=proof,
        grace_days=ints["outcomes.grace_days"], followup_months=months,
        custody_time_at_risk=bool(_get(raw, "outcomes.custody_time_at_risk", src, bool)),
        min_treated=ints["analysis.min_treated"], seed=ints["analysis.seed"],
        covariates=_covariates(raw, "analysis.covariates", src),
        categorical=_covariates(raw, "analysis.categorical", src),
        stratify_by_site=bool(_get(raw, "analysis.stratify_by_site", src, bool, False)),
        landmark_days=int(_get(raw, "analysis.landmark_days", src, int, 180)),
        disclosure=_get(raw, "disclosure", src, dict, {}) or {},
        sha256=hashlib.sha256(text).hexdigest(), source=src,
        comparison=_comparison(raw, src), plausible_hr=plan.assumed_hr, plan=plan)


def _plausible_hr(raw: dict, src: str) -> float:
    value = _get(raw, "analysis.plausible_hr", src, (int, float), 0.75)
    if not 0 < float(value) < 1:
        raise ConfigError(f"{src}: 'analysis.plausible_hr' must lie between 0 and 1 "
                          "(a protective hazard ratio, e.g. 0.75)")
    return float(value)


SUBGROUP_VARIABLES = ("srp_type", "risk_rating", "victim_relationship", "site", "sex",
                      "personality_disorder", "substance_misuse", "psychosis")


def _trim(value: Any, key: str, src: str) -> Trim:
    if value is None or value == "common_support":
        return value
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) for v in value) and 0 <= value[0] < value[1] <= 1):
        return (float(value[0]), float(value[1]))
    raise ConfigError(f"{src}: '{key}' must be null, common_support or [lo, hi] with "
                      "0 <= lo < hi <= 1 (bounds on the propensity score)")


def _comparison(raw: dict, src: str) -> ComparisonConfig:
    """Validate ``analysis.comparison`` (every key optional; defaults in ComparisonConfig)."""
    d = ComparisonConfig()
    base = "analysis.comparison"
    if _get(raw, base, src, dict, None) is None:
        return d

    def get(key: str, kind: type | tuple, default: Any) -> Any:
        value = _get(raw, f"{base}.{key}", src, kind, default)
        return default if value is None and default is not None else value

    numeric = set(KNOWN_COVARIATES) - {"sex", "ethnicity_group", "site", "victim_relationship"}
    squares = tuple(get("propensity_squares", list, []))
    if not set(squares) <= numeric:
        raise ConfigError(f"{src}: {base}.propensity_squares must name numeric covariates "
                          f"({', '.join(sorted(numeric))})")
    k = get("matching.k", int, d.k)
    caliper = _get(raw, f"{base}.matching.caliper", src, (int, float), d.caliper)
    calipers = tuple(float(c) for c in get("matching.sensitivity_calipers", list,
                                           list(d.sensitivity_calipers)))
    order = get("matching.order", str, d.order)
    boot = get("weighting.bootstrap_replicates", int, d.bootstrap_replicates)
    subgroups = tuple(get("subgroups", list, list(d.subgroups)))
    bands = tuple(get("dose_bands", list, list(d.dose_bands)))
    threshold = float(get("balance_threshold", (int, float), d.balance_threshold))
    max_controls = _get(raw, f"{base}.max_controls_per_trial", src, int,
                        d.max_controls_per_trial)
    if max_controls is not None and max_controls < 1:
        raise ConfigError(f"{src}: {base}.max_controls_per_trial must be a positive whole "
                          "number or null (keep every eligible person)")
    if k < 1:
        raise ConfigError(f"{src}: {base}.matching.k must be a positive whole number")
    if (caliper is not None and caliper <= 0) or any(c <= 0 for c in calipers):
        raise ConfigError(f"{src}: {base}.matching calipers must be positive (SDs of the logit)")
    if order not in ("largest", "smallest", "data", "random"):
        raise ConfigError(f"{src}: {base}.matching.order must be largest, smallest, data or "
                          "random")
    if boot < 0:
        raise ConfigError(f"{src}: {base}.weighting.bootstrap_replicates must not be negative")
    if not set(subgroups) <= set(SUBGROUP_VARIABLES):
        raise ConfigError(f"{src}: {base}.subgroups must be among {', '.join(SUBGROUP_VARIABLES)}")
    if not bands or any(not isinstance(b, int) for b in bands) or list(bands) != sorted(
            set(bands)) or bands[0] < 1:
        raise ConfigError(f"{src}: {base}.dose_bands must be increasing whole numbers of "
                          "sessions starting at 1 or more")
    if threshold <= 0:
        raise ConfigError(f"{src}: {base}.balance_threshold must be positive")
    return ComparisonConfig(
        propensity_squares=squares,
        trim=_trim(get("trim", (str, list), None), f"{base}.trim", src),
        k=k, caliper=None if caliper is None else float(caliper),
        replace=bool(get("matching.replace", bool, d.replace)), order=order,
        sensitivity_calipers=calipers,
        sensitivity_trim=_trim(_get(raw, f"{base}.weighting.sensitivity_trim", src, (str, list),
                                    d.sensitivity_trim), f"{base}.weighting.sensitivity_trim",
                               src),
        bootstrap_replicates=boot, subgroups=subgroups, dose_bands=bands,
        balance_threshold=threshold, max_controls_per_trial=max_controls)
