"""Re-fit the primary analysis on a research snapshot: the weighted hazard ratio over the
sequential trials' risk sets (the default plan), or the matched-sample one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analysis.comparison_effects import effect_rows
from pipeline.analysis.comparison_results import MAIN_ANALYSIS
from pipeline.analysis.frames import cohort_frame
from pipeline.analysis.propensity_scores import fit_scores, score_logits
from pipeline.analysis.risk_set_matching import (
    MatchSpec,
    match_risk_sets,
    matched_frame,
    stored_matches,
)
from pipeline.analysis.risk_set_weighting import ANALYSIS as RISK_SETS
from pipeline.analysis.risk_set_weighting import risk_set_weights
from pipeline.config import KNOWN_COVARIATES, EvaluationConfig
from pipeline.research.api import Snapshot
from pipeline.warehouse_io import read_extract

# covariates entered as categories (dummy-coded); the others are numeric
CATEGORICAL_COVARIATES = frozenset({"sex", "ethnicity_group", "site", "victim_relationship"})


@dataclass(frozen=True)
class PrimaryRefit:
    """The result of ``refit_primary``.

    Attributes
    ----------
    summary: the tidy estimate rows (columns of ``analysis.comparison_estimates``): ``hr``
        (treatment HR within the matched sample, cluster-robust 95% CI), ``hr_adjusted``
        (the same with the covariates in the Cox model) and the proportional-hazards tests.
    hazard_ratio_: the ``hr`` estimate; ``hazard_ratio_adjusted_``: the ``hr_adjusted`` one.
    frame: the matched analysis frame (treated and matched comparison units; ``weight``,
        ``cluster``, ``time_days``, ``event``, covariates).
    covariates, family, proof, rematched: what was fitted.
    """

    summary: pd.DataFrame
    frame: pd.DataFrame
    covariates: tuple[str, ...]
    family: str
    proof: str
    rematched: bool

    def _estimate(self, measure: str) -> float:
        rows = self.summary[self.summary["measure"] == measure]
        return float(rows["estimate"].iloc[0]) if len(rows) else float("nan")

    @property
    def hazard_ratio_(self) -> float:
        return self._estimate("hr")

    @property
    def hazard_ratio_adjusted_(self) -> float:
        return self._estimate("hr_adjusted")


def _with_covariates(cfg: EvaluationConfig, covariates: Sequence[str] | None) -> EvaluationConfig:
    if covariates is None:
        return cfg
    unknown = [c for c in covariates if c not in KNOWN_COVARIATES]
    if unknown:
        raise ValueError(f"unknown covariates {unknown}; choose from "
                         f"{', '.join(KNOWN_COVARIATES)}")
    return dataclasses.replace(
        cfg, covariates=tuple(c for c in covariates if c not in CATEGORICAL_COVARIATES),
        categorical=tuple(c for c in covariates if c in CATEGORICAL_COVARIATES))


def _rematch(units: pd.DataFrame, pairs: pd.DataFrame, cfg: EvaluationConfig
             ) -> pd.DataFrame:
    """Fit the propensity score on ``cfg``'s covariates and match again within risk sets,
    exactly as the pipeline's ``write_matches`` does; return the matches."""
    model = fit_scores(units, cfg)
    treated = units["treated"].to_numpy() == 1
    treated_logit = pd.Series(np.asarray(model.logits)[treated],
                              index=units.loc[treated, "person_key"].to_numpy())
    scored = pairs[["unit_id", "treated_key", "person_key"]].assign(
        logit=score_logits(model, pairs, cfg) if len(pairs) else np.zeros(0))
    result = match_risk_sets(treated_logit, scored, MatchSpec.from_config(cfg),
                             float(np.std(model.logits, ddof=1)))
    return result.matches


def refit_primary(snapshot: Snapshot, covariates: Sequence[str] | None = None, *,
                  family: str | None = None, proof: str | None = None,
                  rematch: bool = False, cohort: str = "started") -> PrimaryRefit:
    """Re-fit the report's primary analysis with another covariate set or outcome: under the
    default plan the weighted Cox hazard ratio over the risk sets (``weighted_risk_sets``: the
    risk-set score is re-fitted on ``covariates`` and each trial's comparison people
    re-weighted; ``rematch`` has no further effect), else the matched-sample one.

    The matched sample is the run's (``analysis.matches``) unless ``rematch``; the Cox model
    is the pipeline's own (``pipeline.analysis.comparison_effects.effect_rows``: Efron ties,
    cluster-robust SE over matched sets, adjusted model stratified by site as configured).
    With the defaults the ``hr`` row equals the funder report's headline exactly.

    Parameters
    ----------
    snapshot: from ``open_snapshot``.
    covariates: covariates of the adjusted Cox model (and of the propensity score when
        ``rematch``), chosen from ``pipeline.config.KNOWN_COVARIATES``; default: the run's.
    family: outcome family: the configured main family (the only one risk-set pairs carry).
    proof: ``"proven"`` or ``"recorded"`` (default: the configured rule).
    rematch: also re-fit the propensity score on ``covariates`` and match again within risk
        sets (same caliper, k, order and seed as the run); ``hr`` then changes too.
    cohort: ``"started"`` (main) or ``"itt"``.

    Returns
    -------
    PrimaryRefit: ``summary`` (tidy rows), ``hazard_ratio_``, ``hazard_ratio_adjusted_``,
    ``frame``.

    Example
    -------
    >>> from pipeline.research import open_snapshot, refit_primary
    >>> snap = open_snapshot()
    >>> refit_primary(snap).hazard_ratio_ == snap.headline()["estimate"]   # doctest: +SKIP
    True
    >>> fit = refit_primary(snap, covariates=["age", "prior_sh", "sex"], rematch=True)
    >>> fit.summary[["measure", "estimate", "lower", "upper", "p"]]         # doctest: +SKIP
    """
    cfg = _with_covariates(snapshot.config, covariates)
    family = family or cfg.main_family
    if family != cfg.main_family:
        raise ValueError(f"the risk-set pairs carry outcomes of the main family only "
                         f"('{cfg.main_family}'); '{family}' can be analysed on the cohort "
                         "frame (snapshot.cohort(family=...)) but not re-fitted here")
    proof = proof or cfg.proof
    con, eid = snapshot.con, snapshot.extract_id
    analysis = MAIN_ANALYSIS[cohort]
    units = cohort_frame(con, eid, cfg, family=family, proof=proof, cohort=cohort)
    pairs = cohort_frame(con, eid, cfg, family=family, proof=proof, cohort=cohort,
                         prefix="rs_")
    if cohort == "started" and cfg.plan.primary_analysis == RISK_SETS:
        # the risk-set score is always re-fitted from the frame (on ``covariates``)
        frame = risk_set_weights(units, pairs, cfg).frame
        summary = effect_rows(frame, cfg, RISK_SETS, weights_col="weight",
                              cluster_col="cluster", adjust=True, measures=frozenset({"hr"}))
        return PrimaryRefit(summary, frame, (*cfg.covariates, *cfg.categorical), family,
                            proof, True)
    if rematch:
        matches = _rematch(units, pairs, cfg)
    else:
        scores = read_extract(con, "analysis.propensity", eid, f"cohort = '{cohort}'")
        units = units.merge(scores[["unit_id", "ps"]], on="unit_id", how="left")
        matches = stored_matches(read_extract(con, "analysis.matches", eid), cohort, analysis)
    frame = matched_frame(units, pairs, matches)
    summary = effect_rows(frame, cfg, analysis, weights_col="weight", cluster_col="cluster",
                          adjust=True, measures=frozenset({"hr"}))
    return PrimaryRefit(summary, frame, (*cfg.covariates, *cfg.categorical), family, proof,
                        rematch)
