"""Risk-set matching: each treated person is matched to comparison people eligible on the
treated person's own index date, scored with their covariates as of that date.

The candidates are the risk-set pairs of ``analysis.risk_sets`` (same site, alive, free, not
yet referred, similar time since the qualifying offence; people treated later are candidates
until their own start, as in a sequential target-trial emulation), so exact matching on site
and on the index date is built in: a control's follow-up starts on its treated match's index
date and no immortal time is credited to either group. Among the candidates, greedy
nearest-neighbour matching on the logit of the propensity score
(``pipeline.comparison.match_nearest``) with:

* a caliper in SDs of the logit over the score's fitting sample (default 0.2);
* 1:k (default 1:1), in rounds: every treated person takes a first control, then a second …;
* without replacement by default: a comparison *person* is used at most once, even though they
  appear in many risk sets with different covariates;
* treated people in order of decreasing score (MatchIt's default; ``random`` draws the order
  with the configured seed); equal distances go to the smaller person key, equal scores of
  treated people to the smaller key, so the result is deterministic.

Treated people left unmatched are counted by reason (no eligible candidate, none within the
caliper, candidates all used) and described in ``unmatched_profile``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.cohort.measures import write_measures
from pipeline.comparison import MatchResult, balance_table, match_nearest
from pipeline.config import EvaluationConfig
from pipeline.warehouse_io import write_extract_rows

# integer surrogate keys: a pair's unit_id follows the extract's cohort units' ids (so that a
# stacked frame of cohort units and pair units has unique ids), in a deterministic order
RS_UNITS_SQL = """
SELECT extract_id, cohort,
       (SELECT coalesce(max(unit_id), 0) FROM analysis.units WHERE extract_id = $eid)
       + row_number() OVER (ORDER BY cohort, treated_key, person_key) AS unit_id,
       person_key, 'comparison' AS arm, index_date, qualifying_offence_key, qualifying_date,
       treated_key, sampling_weight
FROM analysis.risk_sets WHERE extract_id = $eid
"""

MATCH_COLUMNS = ["cohort", "analysis", "matched_set", "treated_unit_id", "control_unit_id",
                 "treated_key", "control_key", "distance"]
SUMMARY_COLUMNS = ["cohort", "analysis", "n_treated", "n_matched", "n_unmatched_no_eligible",
                   "n_unmatched_caliper", "n_unmatched_exhausted", "n_controls_used",
                   "caliper_width", "caliper_sd_units", "k", "replace"]


def write_risk_set_units(con: duckdb.DuckDBPyConnection, extract_id: str,
                         cfg: EvaluationConfig, extraction: dt.date) -> dict[str, int]:
    """Write ``analysis.rs_units`` (one unit per risk-set pair, same columns as
    ``analysis.units``) and their covariates and outcomes as of the treated index date
    (``analysis.rs_covariates``, ``analysis.rs_outcomes``)."""
    n = write_extract_rows(con, "analysis.rs_units", RS_UNITS_SQL, extract_id)
    # pairs are analysed on the main outcome family only (both proof rules: the other one is
    # a sensitivity analysis), so their outcomes are built for that family alone
    _, n_out = write_measures(con, extract_id, cfg, extraction, units="analysis.rs_units",
                              prefix="rs_", families=(cfg.main_family,))
    return {"risk_set_units": n, "risk_set_outcome_rows": n_out}


@dataclass(frozen=True)
class MatchSpec:
    """How to match: 1:k, caliper in SDs of the logit (None: none), replacement, order, seed."""

    k: int = 1
    caliper: float | None = 0.2
    replace: bool = False
    order: str = "largest"
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: EvaluationConfig, caliper: float | None | str = "config"
                    ) -> MatchSpec:
        c = cfg.comparison
        return cls(k=c.k, caliper=c.caliper if caliper == "config" else caliper,
                   replace=c.replace, order=c.order, seed=cfg.seed)


def match_risk_sets(treated_logit: pd.Series, pairs: pd.DataFrame, spec: MatchSpec,
                    caliper_sd: float) -> MatchResult:
    """Match within risk sets.

    ``treated_logit``: logit of each treated person's score, indexed by person_key (every
    treated person of the cohort, so that those without candidates are counted).
    ``pairs``: one row per risk-set pair with treated_key, person_key (the candidate),
    unit_id (the pair's unit) and logit (candidate's score as of the treated index date).
    """
    table = pd.DataFrame({
        "treated_id": pairs["treated_key"].to_numpy(),
        "control_id": pairs["person_key"].to_numpy(),
        "treated_logit": treated_logit.reindex(pairs["treated_key"]).to_numpy(),
        "control_logit": pairs["logit"].to_numpy(float),
        "control_unit_id": pairs["unit_id"].to_numpy()})
    table = table[table["treated_logit"].notna()]
    return match_nearest(table, k=spec.k, caliper=spec.caliper, replace=spec.replace,
                         order=spec.order, seed=spec.seed, caliper_sd=caliper_sd,
                         treated_ids=list(treated_logit.index))


def set_clusters(matches: pd.DataFrame) -> pd.Series:
    """Cluster of each matched set for robust SEs, by person: the matched set itself, or the
    connected group of sets that share a person — a control reused (with replacement), or a
    person who is a control in an earlier trial and the treated member of their own later
    (sequential trials)."""
    sets = matches["matched_set"].to_numpy()
    s_code, s_uniq = pd.factorize(sets)
    linked = [matches["control_id"].to_numpy()]
    if "treated_id" in matches:
        linked.append(matches["treated_id"].to_numpy())
    p_code, p_uniq = pd.factorize(np.concatenate(linked))
    n = len(s_uniq) + len(p_uniq)
    rows = np.tile(s_code, len(linked))
    graph = coo_matrix((np.ones(len(rows)), (rows, len(s_uniq) + p_code)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return pd.Series(label[: len(s_uniq)], index=s_uniq, name="cluster")


def matched_frame(units: pd.DataFrame, pairs: pd.DataFrame, matches: pd.DataFrame
                  ) -> pd.DataFrame:
    """Stacked analysis frame of a matched sample: the matched treated units (from the cohort
    frame) and their matched pair units (from the risk-set frame), with matched_set, weight
    (treated 1; a control 1 / controls in its set) and cluster (see ``set_clusters``).

    ``matches`` needs matched_set, treated_id (treated person_key), control_id (comparison
    person_key) and control_unit_id: ``MatchResult.matches`` or ``stored_matches``.
    """
    m = matches
    clusters = set_clusters(m)
    size = m.groupby("matched_set")["control_id"].transform("size").to_numpy()
    per_treated = m.drop_duplicates("treated_id").set_index("treated_id")["matched_set"]
    treated = units[(units["treated"] == 1) & units["person_key"].isin(per_treated.index)]
    treated = treated.assign(matched_set=treated["person_key"].map(per_treated).to_numpy(),
                             weight=1.0)
    ctrl = pairs.set_index("unit_id").loc[m["control_unit_id"]].reset_index()
    ctrl = ctrl.assign(matched_set=m["matched_set"].to_numpy(), weight=1.0 / size)
    out = pd.concat([treated, ctrl.reindex(columns=treated.columns)], ignore_index=True)
    out["matched_set"] = out["matched_set"].astype(int)
    out["cluster"] = out["matched_set"].map(clusters).to_numpy()
    return out


def stored_matches(matches: pd.DataFrame, cohort: str, analysis: str) -> pd.DataFrame:
    """One matching's rows of ``analysis.matches`` in the form ``matched_frame`` takes."""
    m = matches[(matches["cohort"] == cohort) & (matches["analysis"] == analysis)]
    return pd.DataFrame({
        "matched_set": m["matched_set"].to_numpy(),
        "treated_id": m["treated_key"].to_numpy(),
        "control_id": m["control_key"].to_numpy(),
        "control_unit_id": m["control_unit_id"].to_numpy()})


def match_tables(cohort: str, analysis: str, result: MatchResult, spec: MatchSpec,
                 treated_units: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``analysis.matches`` and ``analysis.match_summary`` for one matching.

    ``treated_units``: each treated person's unit_id, indexed by person_key."""
    m = result.matches
    matches = pd.DataFrame({
        "cohort": cohort, "analysis": analysis,
        "matched_set": m["matched_set"].astype(int).to_numpy(),
        "treated_unit_id": treated_units.reindex(m["treated_id"]).to_numpy(),
        "control_unit_id": m["control_unit_id"].to_numpy(),
        "treated_key": m["treated_id"].to_numpy(), "control_key": m["control_id"].to_numpy(),
        "distance": m["distance"].astype(float).to_numpy()},
        columns=MATCH_COLUMNS)
    c = result.counts
    summary = pd.DataFrame([{
        "cohort": cohort, "analysis": analysis, "n_treated": c["n_treated"],
        "n_matched": c["n_treated_matched"], "n_unmatched_no_eligible": c["n_no_eligible_control"],
        "n_unmatched_caliper": c["n_none_within_caliper"],
        "n_unmatched_exhausted": c["n_pool_exhausted"], "n_controls_used": c["n_controls_used"],
        "caliper_width": np.nan if result.caliper_width is None else result.caliper_width,
        "caliper_sd_units": np.nan if spec.caliper is None else spec.caliper,
        "k": spec.k, "replace": spec.replace}], columns=SUMMARY_COLUMNS)
    return matches, summary


def unmatched_profile(cohort: str, analysis: str, units: pd.DataFrame, result: MatchResult,
                      cfg: EvaluationConfig) -> pd.DataFrame:
    """How unmatched treated people differ from matched ones: per covariate the mean of each
    group and the SMD (unmatched minus matched, in SDs of the matched treated)."""
    treated = units[units["treated"] == 1]
    unmatched = treated["person_key"].isin(result.unmatched_treated["treated_id"])
    cols = ["cohort", "analysis", "covariate", "mean_matched", "mean_unmatched", "smd",
            "n_unmatched"]
    if not unmatched.any() or unmatched.all():
        return pd.DataFrame(columns=cols)
    data = treated.assign(unmatched=unmatched.astype(int),
                          **{c: treated[c].astype(float) for c in cfg.covariates})
    tab = balance_table(data, [*cfg.covariates, *cfg.categorical], "unmatched",
                        sd="control", categorical=list(cfg.categorical))
    return pd.DataFrame({"cohort": cohort, "analysis": analysis, "covariate": tab.index,
                         "mean_matched": tab["mean_control"].to_numpy(),
                         "mean_unmatched": tab["mean_treated"].to_numpy(),
                         "smd": tab["smd"].to_numpy(), "n_unmatched": int(unmatched.sum())},
                        columns=cols)
