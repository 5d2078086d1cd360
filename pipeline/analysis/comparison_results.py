"""Treated vs comparison, adjusted: propensity scores, risk-set matching, weighting, balance,
effects, sensitivity analyses and subgroups, written to ``analysis.*`` for one extract.

Three steps, one per asset:

1. ``write_propensity_scores``: risk-set pair units with covariates/outcomes as of the treated
   index date (``rs_units``, ``rs_covariates``, ``rs_outcomes``); per cohort (``started``,
   ``itt``) the score fitted on treated vs naive comparison units (``propensity``), applied to
   every pair (``rs_propensity``), and overlap diagnostics (``overlap``).
2. ``write_matches``: risk-set matching per cohort and caliper (``matches``,
   ``match_summary``, ``unmatched_profile``).
3. ``write_comparison_estimates``: the tidy estimates (``comparison_estimates``, columns
   ``ESTIMATE_COLUMNS``), balance before/after (``balance``), the matched sample's KM curves
   (``matched_km``) and bootstrap-banded weighted KM curves (``weighted_km``).

Analyses (``analysis`` column): ``naive`` (unadjusted, naive sample), ``matched`` (main),
``weighted_att``, ``weighted_ate``, ``weighted_att_trimmed``, ``matched_caliper_<c>``,
``matched_<other proof>_outcome`` (e.g. ``matched_recorded_outcome``), ``matched_itt``,
``matched_landmark``, ``subgroup:<variable>=<level>``; interaction tests as
``interaction_p`` rows of ``subgroup:<variable>``. The primary analysis is
``weighted_risk_sets`` (everyone who started, weighted within the trials' risk sets) with its
doubly robust companion ``weighted_risk_sets_dr``; adherence is reported only within the
treated (``treated_only``), as associations.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.adjusted_rows import dr_rows
from pipeline.analysis.balance_tables import balance_rows, imbalance_counts
from pipeline.analysis.comparison_effects import effect_rows
from pipeline.analysis.estimates import month_days
from pipeline.analysis.frames import cohort_frame
from pipeline.analysis.per_protocol import per_protocol_rows, switch_days
from pipeline.analysis.propensity_scores import (
    CohortScore,
    fit_scores,
    logit_sql,
    overlap_rows,
)
from pipeline.analysis.risk_set_matching import (
    MatchSpec,
    match_risk_sets,
    match_tables,
    matched_frame,
    stored_matches,
    unmatched_profile,
    write_risk_set_units,
)
from pipeline.analysis.risk_set_weighting import (
    ANALYSIS as PRIMARY,
)
from pipeline.analysis.risk_set_weighting import (
    RiskSetScoreError,
    distinct_at_risk,
    risk_set_weights,
)
from pipeline.analysis.subgroups import landmark_rows, subgroup_rows
from pipeline.analysis.survival_bootstrap import curve_table, fixed_weights
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS, not_estimable
from pipeline.analysis.treated_only import landmark_frame
from pipeline.analysis.weighted_results import (
    KM_MONTHS,
    survival_grid,
    weighted_analysis,
    weighted_km_rows,
)
from pipeline.comparison import PropensityFitError
from pipeline.config import EvaluationConfig
from pipeline.survival import kaplan_meier
from pipeline.warehouse_io import read_extract, table_exists, write_frame

MAIN_ANALYSIS = {"started": "matched", "itt": "matched_itt"}
MATCHED_KM_COLUMNS = ["arm", "time", "n_risk", "n_event", "surv", "lower", "upper"]
ESTIMATE_TABLES = ("comparison_estimates", "balance", "matched_km", "weighted_km", "primary_km",
                   "jdl_estimates")
PRIMARY_KM_COLUMNS = ["arm", "time", "n_risk", "surv", "lower", "upper"]


def cohort_frames(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                  cohort: str, proof: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cohort frame (treated + naive comparison units) and the risk-set pair frame."""
    units = cohort_frame(con, extract_id, cfg, proof=proof, cohort=cohort)
    pairs = cohort_frame(con, extract_id, cfg, proof=proof, cohort=cohort, prefix="rs_")
    return units, pairs


def _both_arms(units: pd.DataFrame) -> bool:
    return units["treated"].nunique() == 2


def _replace(con: duckdb.DuckDBPyConnection, table: str, parts: list[pd.DataFrame],
             extract_id: str) -> None:
    """Replace this extract's rows of ``analysis.<table>``; with nothing to write, remove
    them (no stale rows from an earlier run survive a run that could not estimate)."""
    qualified = f"analysis.{table}"
    if parts:
        write_frame(con, qualified, pd.concat(parts, ignore_index=True), extract_id)
    elif table_exists(con, qualified):
        con.execute(f"DELETE FROM {qualified} WHERE extract_id = ?", [extract_id])


# ------------------------------------------------------------------------ 1. scores


def write_propensity_scores(con: duckdb.DuckDBPyConnection, extract_id: str,
                            cfg: EvaluationConfig, extraction: dt.date) -> dict:
    """Risk-set pair units and measures, scores, pair scores and overlap for each cohort."""
    meta = write_risk_set_units(con, extract_id, cfg, extraction)
    scores, pair_scores, overlap = [], [], []
    for cohort in MAIN_ANALYSIS:
        units = cohort_frame(con, extract_id, cfg, cohort=cohort)
        if not _both_arms(units):
            meta[f"{cohort}_score_not_fitted"] = "an arm is empty"
            continue
        try:
            model = fit_scores(units, cfg)
        except PropensityFitError as exc:
            meta[f"{cohort}_score_not_fitted"] = str(exc)
            continue
        scores.append(pd.DataFrame({"cohort": cohort, "unit_id": units["unit_id"],
                                    "person_key": units["person_key"], "arm": units["arm"],
                                    "ps": model.scores, "logit": model.logits}))
        # pairs are scored where they live: only keys and scores leave DuckDB
        pair_scores.append(con.execute(f"""
            SELECT cohort, unit_id, treated_key, person_key, 1 / (1 + exp(-logit)) AS ps, logit
            FROM (SELECT ? AS cohort, u.unit_id, u.treated_key, u.person_key,
                         {logit_sql(model, cfg)} AS logit
                  FROM analysis.rs_units u
                  JOIN analysis.rs_covariates c USING (extract_id, unit_id)
                  WHERE u.extract_id = ? AND u.cohort = ?)
            ORDER BY unit_id""", [cohort, extract_id, cohort]).df())
        overlap.append(overlap_rows(cohort, model.scores, units["treated"].to_numpy()))
        meta[f"{cohort}_scored_units"] = len(units)
    for table, parts in (("propensity", scores), ("rs_propensity", pair_scores),
                         ("overlap", overlap)):
        _replace(con, table, parts, extract_id)
    return meta


# ------------------------------------------------------------------------ 2. matching


def matching_plan(cfg: EvaluationConfig) -> list[tuple[str, str, float | None]]:
    """(cohort, analysis, caliper in SDs) of every matching: main cohort with the configured
    caliper and the sensitivity calipers, ITT with the configured caliper."""
    plan = [("started", "matched", cfg.comparison.caliper)]
    plan += [("started", f"matched_caliper_{c:g}", c)
             for c in cfg.comparison.sensitivity_calipers if c != cfg.comparison.caliper]
    plan.append(("itt", "matched_itt", cfg.comparison.caliper))
    return plan


def _scores(con: duckdb.DuckDBPyConnection, extract_id: str, cohort: str
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    where = f"cohort = '{cohort}'"
    return (read_extract(con, "analysis.propensity", extract_id, where),
            read_extract(con, "analysis.rs_propensity", extract_id, where))


def write_matches(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig
                  ) -> dict:
    """Match within risk sets for every entry of ``matching_plan``; write the matches, the
    summary counts and the profile of unmatched treated people."""
    matches, summaries, profiles, meta = [], [], [], {}
    for cohort, analysis, caliper in matching_plan(cfg):
        if not table_exists(con, "analysis.propensity"):
            break
        scores, pair_scores = _scores(con, extract_id, cohort)
        if scores.empty:
            continue
        treated = scores[scores["arm"] == "treated"]
        treated_logit = pd.Series(treated["logit"].to_numpy(), index=treated["person_key"])
        spec = MatchSpec.from_config(cfg, caliper=caliper)
        result = match_risk_sets(treated_logit, pair_scores, spec,
                                 float(np.std(scores["logit"], ddof=1)))
        m, s = match_tables(cohort, analysis, result, spec,
                            treated.set_index("person_key")["unit_id"])
        matches.append(m)
        summaries.append(s)
        if analysis == MAIN_ANALYSIS[cohort]:
            units = cohort_frame(con, extract_id, cfg, cohort=cohort)
            profiles.append(unmatched_profile(cohort, analysis, units, result, cfg))
        meta[f"{analysis}_matched"] = result.counts["n_treated_matched"]
        meta[f"{analysis}_unmatched"] = result.counts["n_treated_unmatched"]
    for table, parts in (("matches", matches), ("match_summary", summaries),
                         ("unmatched_profile", profiles)):
        _replace(con, table, parts, extract_id)
    return meta


# ------------------------------------------------------------------------ 3. estimates


def _matched_km(frame: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for arm, code in (("treated", 1), ("comparison", 0)):
        sub = frame[frame["treated"] == code]
        km = kaplan_meier(sub["time_days"], sub["event"], weights=sub["weight"])
        parts.append(km.assign(arm=arm))
    return pd.concat(parts, ignore_index=True)[MATCHED_KM_COLUMNS]


def _other_proof(cfg: EvaluationConfig) -> str:
    return "recorded" if cfg.proof == "proven" else "proven"


def _matched_rows(frame: pd.DataFrame, cfg: EvaluationConfig, analysis: str, *,
                  boot: bool = True, adjust: bool = False,
                  measures: frozenset[str] | None = None) -> pd.DataFrame:
    n_boot = cfg.comparison.bootstrap_replicates
    both_arms = frame["treated"].nunique() == 2  # nobody matched: no curves to resample
    curves = fixed_weights(frame, survival_grid(cfg), n_boot, cfg.seed, "weight", "cluster") \
        if boot and n_boot > 0 and both_arms else None
    kwargs = {"measures": measures} if measures is not None else {}
    return effect_rows(frame, cfg, analysis, weights_col="weight", cluster_col="cluster",
                       boot=curves, adjust=adjust, **kwargs)


def _primary(units: pd.DataFrame, pairs: pd.DataFrame, cfg: EvaluationConfig,
             switch: pd.Series | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """The primary analysis (``risk_set_weighting``): estimate rows (with its doubly robust
    companion and, given ``switch`` days per pair unit, the per-protocol contrast), its KM
    table with people at risk per arm (None when not estimable) and the weighted frame."""
    try:
        rs = risk_set_weights(units, pairs, cfg)
    except RiskSetScoreError as exc:
        t = units[units["treated"] == 1]
        counts = {"n_treated": len(t), "n_comparison": 0, "events_treated": int(t["event"].sum()),
                  "events_comparison": 0}
        reason = "arm_empty" if "no treated person" in str(exc) else "model_not_fitted"
        return pd.DataFrame([not_estimable(PRIMARY, "hr", counts, reason, note=str(exc))]), \
            None, None
    frame = rs.frame
    n_boot = cfg.comparison.bootstrap_replicates
    boot = fixed_weights(frame, survival_grid(cfg), n_boot, cfg.seed, "weight", "cluster") \
        if n_boot > 0 and frame["treated"].nunique() == 2 else None
    note = (f"ATT weights within risk sets ({rs.n_trials} trials; effective comparison size "
            f"{rs.ess_comparison:.0f}); {rs.n_no_control} treated without an eligible control")
    rows = effect_rows(frame, cfg, PRIMARY, weights_col="weight", cluster_col="cluster",
                       boot=boot, adjust=True, note=note)
    parts = [rows, dr_rows(frame, cfg)]
    if switch is not None:
        parts.append(per_protocol_rows(frame, switch, cfg))
    rows = pd.concat(parts, ignore_index=True)
    km = None
    if boot is not None:
        days = [month_days(m) for m in KM_MONTHS]
        km = curve_table(boot, days, distinct_at_risk(frame, days))[PRIMARY_KM_COLUMNS]
    return rows, km, frame


def _jdl(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
         frame: pd.DataFrame) -> pd.DataFrame:
    """The Justice Data Lab-compatible block on the primary analysis's people and weights."""
    from pipeline.analysis.jdl import jdl_rows
    from pipeline.ingest.load import extraction_date

    sample = frame.loc[frame["weight"] > 0, ["person_key", "index_date", "arm", "weight",
                                             "cluster"]]
    return jdl_rows(con, extract_id, cfg, extraction_date(con, extract_id), sample)


def _registered(con: duckdb.DuckDBPyConnection, extract_id: str) -> bool:
    """The extract's extraction date is known (``meta.extracts``): the JDL block needs it."""
    return table_exists(con, "meta.extracts") and con.execute(
        "SELECT count(*) FROM meta.extracts WHERE extract_id = ?", [extract_id]
    ).fetchone()[0] > 0


def _weighted(units: pd.DataFrame, score: CohortScore, cfg: EvaluationConfig
              ) -> tuple[list[pd.DataFrame], dict[str, np.ndarray], list[pd.DataFrame]]:
    """Weighted analyses of the naive sample (sensitivity analyses): estimate rows, weights
    (for balance) and KM. Only the ATT analysis draws bootstrap resamples (score re-fitted);
    the ATE, overlap (ATO) and trimmed analyses use robust SEs with the score taken as known,
    so that the step costs a few hundred fits, not a thousand."""
    c = cfg.comparison
    plan = [("weighted_att", "ATT", c.trim, None), ("weighted_ate", "ATE", c.trim, 0),
            ("weighted_ato", "ATO", None, 0)]
    if c.sensitivity_trim != c.trim:
        plan.append(("weighted_att_trimmed", "ATT", c.sensitivity_trim, 0))
    rows, weights, curves = [], {}, []
    for analysis, estimand, trim, n_boot in plan:
        est, boot, wf = weighted_analysis(units, units["ps"].to_numpy(float), score, cfg,
                                          analysis, estimand, trim, n_boot=n_boot)
        rows.append(est)
        if analysis != "weighted_att_trimmed":
            weights[estimand.lower()] = wf["weight"].to_numpy()
            if boot is not None:
                curves.append(weighted_km_rows(estimand, boot, wf[wf["weight"] > 0]))
    return rows, weights, curves


def _sensitivity(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                 units: pd.DataFrame, pairs: pd.DataFrame, mf: pd.DataFrame,
                 stored: pd.DataFrame) -> list[pd.DataFrame]:
    """Other calipers, the other proof rule, subgroups, completers and dose (main cohort)."""
    rows = []
    for cohort, analysis, _ in matching_plan(cfg):
        if cohort == "started" and analysis.startswith("matched_caliper_"):
            alt = matched_frame(units, pairs, stored_matches(stored, cohort, analysis))
            rows.append(_matched_rows(alt, cfg, analysis, boot=False,
                                      measures=frozenset({"hr", "risk"})))
    proof = _other_proof(cfg)
    u2, p2 = cohort_frames(con, extract_id, cfg, "started", proof=proof)
    other = matched_frame(u2, p2, stored_matches(stored, "started", "matched"))
    rows.append(_matched_rows(other, cfg, f"matched_{proof}_outcome"))
    if mf["treated"].nunique() < 2:
        return rows
    rows += [subgroup_rows(mf, cfg, variable) for variable in cfg.comparison.subgroups]
    exposure = landmark_frame(con, extract_id, cfg, units)  # the frame read once
    rows.append(landmark_rows(mf, exposure[["person_key", "sessions_by_landmark",
                                            "completed_by_landmark"]], cfg))
    return rows


def comparison_estimates(con: duckdb.DuckDBPyConnection, extract_id: str,
                         cfg: EvaluationConfig) -> dict[str, pd.DataFrame]:
    """Every table of step 3, as frames (nothing written)."""
    if not (table_exists(con, "analysis.matches") and table_exists(con, "analysis.propensity")):
        return {}
    stored = read_extract(con, "analysis.matches", extract_id)
    estimates, balance, out = [], [], {}
    primary_frame = None
    for cohort, main in MAIN_ANALYSIS.items():
        scores, _ = _scores(con, extract_id, cohort)
        if scores.empty:
            continue
        units, pairs = cohort_frames(con, extract_id, cfg, cohort)
        units = units.merge(scores[["unit_id", "ps"]], on="unit_id", how="left")
        mf = matched_frame(units, pairs, stored_matches(stored, cohort, main))
        matched_ok = mf["treated"].nunique() == 2
        estimates.append(_matched_rows(mf, cfg, main, adjust=True))
        weights: dict[str, np.ndarray] = {}
        if cohort == "started":
            primary_rows, primary_km, primary_frame = _primary(
                units, pairs, cfg, switch_days(con, extract_id, cfg))
            estimates.append(primary_rows)
            if primary_km is not None:
                out["primary_km"] = primary_km
            if primary_frame is not None and _registered(con, extract_id):
                out["jdl_estimates"] = _jdl(con, extract_id, cfg, primary_frame)
            estimates.append(effect_rows(units, cfg, "naive", adjust=True,
                                         note="unadjusted: treated vs naive comparison units"))
            rows, weights, curves = _weighted(units, fit_scores(units, cfg), cfg)
            estimates += rows
            if curves:
                out["weighted_km"] = pd.concat(curves, ignore_index=True)
            if matched_ok:
                out["matched_km"] = _matched_km(mf)
            estimates += _sensitivity(con, extract_id, cfg, units, pairs, mf, stored)
        stacked = {PRIMARY: primary_frame.assign(matched_set=primary_frame["trial_code"])} \
            if cohort == "started" and primary_frame is not None else None
        balance.append(balance_rows(cohort, units, cfg, matched=mf if matched_ok else None,
                                    weights=weights, stacked=stacked))
    if estimates:
        out["comparison_estimates"] = pd.concat(
            [e for e in estimates if len(e)], ignore_index=True)[ESTIMATE_COLUMNS]
    if balance:
        out["balance"] = pd.concat(balance, ignore_index=True)
    return out


def write_comparison_estimates(con: duckdb.DuckDBPyConnection, extract_id: str,
                               cfg: EvaluationConfig) -> dict:
    """Compute and write step 3's tables; return counts for the asset's metadata."""
    tables = comparison_estimates(con, extract_id, cfg)
    for name in ESTIMATE_TABLES:
        _replace(con, name, [tables[name]] if name in tables else [], extract_id)
    meta = {f"{name}_rows": len(frame) for name, frame in tables.items()}
    meta["imbalanced"] = imbalance_counts(tables["balance"]) if "balance" in tables else {}
    return meta
