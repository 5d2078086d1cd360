"""Propensity scores, risk-set matching and the comparison tables on a confounded synthetic
extract loaded into an in-memory warehouse (the generated frames go straight to staging)."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from benchmarks.simulation_study import stage_extract
from pipeline.analysis.comparison_results import (
    write_comparison_estimates,
    write_matches,
    write_propensity_scores,
)
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS
from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT
from pipeline.survival import fit_cox
from pipeline.synth.generator import generate
from pipeline.synth.params import SynthParams
from pipeline.warehouse_io import read_extract

BASE = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
CFG = dataclasses.replace(BASE, comparison=dataclasses.replace(BASE.comparison,
                                                               bootstrap_replicates=10))


@pytest.fixture(scope="module")
def warehouse():
    params = SynthParams(n_people=4000, seed=31, confounding=1.0)
    con = duckdb.connect()
    eid, extraction = params.extract_id, params.extraction_date
    stage_extract(con, eid, extraction, generate(params))
    link_persons(con, eid)
    build_units(con, eid, CFG, extraction)
    write_measures(con, eid, CFG, extraction)
    meta = {"scores": write_propensity_scores(con, eid, CFG, extraction),
            "matches": write_matches(con, eid, CFG),
            "estimates": write_comparison_estimates(con, eid, CFG)}
    yield con, eid, meta
    con.close()


def _matched_pairs(con, eid) -> pd.DataFrame:
    """Matches joined to the treated and control units, straight from the tables."""
    return con.execute("""
        SELECT m.cohort, m.analysis, m.matched_set, m.distance, t.index_date AS t_index,
               c.index_date AS c_index, c.person_key AS control_person, c.treated_key,
               t.person_key AS treated_person, tc.site AS t_site, cc.site AS c_site,
               p.first_treatment_date, p.first_referral_date,
               pt.logit AS t_logit, pc.logit AS c_logit
        FROM analysis.matches m
        JOIN analysis.units t ON t.extract_id = m.extract_id AND t.unit_id = m.treated_unit_id
        JOIN analysis.rs_units c ON c.extract_id = m.extract_id
             AND c.unit_id = m.control_unit_id
        JOIN analysis.covariates tc ON tc.extract_id = m.extract_id AND tc.unit_id = t.unit_id
        JOIN analysis.rs_covariates cc ON cc.extract_id = m.extract_id
             AND cc.unit_id = c.unit_id
        JOIN analysis.persons p ON p.extract_id = m.extract_id AND p.person_key = c.person_key
        JOIN analysis.propensity pt ON pt.extract_id = m.extract_id AND pt.unit_id = t.unit_id
        JOIN analysis.rs_propensity pc ON pc.extract_id = m.extract_id
             AND pc.unit_id = c.unit_id
        WHERE m.extract_id = ?""", [eid]).df()


def test_controls_start_on_their_treated_match_index_date(warehouse):
    con, eid, _ = warehouse
    pairs = _matched_pairs(con, eid)
    assert len(pairs) > 100
    assert (pairs["t_index"] == pairs["c_index"]).all()
    assert (pairs["treated_key"] == pairs["treated_person"]).all()
    assert (pairs["t_site"] == pairs["c_site"]).all()
    # eligible on that date: not yet treated, not yet referred (sequential trials: people
    # treated later are controls until their own start, and some are here)
    later = pairs["first_treatment_date"].notna()
    assert later.any()
    assert (pairs.loc[later, "first_treatment_date"] > pairs.loc[later, "c_index"]).all()
    referred = pairs["first_referral_date"].notna()
    assert (pairs.loc[referred, "first_referral_date"] > pairs.loc[referred, "c_index"]).all()


def test_no_control_person_used_twice_and_caliper_respected(warehouse):
    con, eid, _ = warehouse
    pairs = _matched_pairs(con, eid)
    summary = read_extract(con, "analysis.match_summary", eid).set_index("analysis")
    for analysis, sub in pairs.groupby("analysis"):
        assert not sub["control_person"].duplicated().any(), analysis
        assert not sub["treated_person"].duplicated().any(), analysis
        width = summary.loc[analysis, "caliper_width"]
        assert (sub["distance"] <= width + 1e-12).all(), analysis
        assert np.allclose(sub["distance"], (sub["t_logit"] - sub["c_logit"]).abs())
    assert summary.loc["matched_caliper_0.1", "caliper_width"] == pytest.approx(
        summary.loc["matched", "caliper_width"] / 2)


def test_every_treated_person_is_counted(warehouse):
    con, eid, _ = warehouse
    summary = read_extract(con, "analysis.match_summary", eid)
    units = read_extract(con, "analysis.units", eid, "arm = 'treated'")
    matches = read_extract(con, "analysis.matches", eid)
    for s in summary.itertuples():
        assert s.n_treated == (units["cohort"] == s.cohort).sum()
        assert s.n_matched + s.n_unmatched_no_eligible + s.n_unmatched_caliper + \
            s.n_unmatched_exhausted == s.n_treated
        m = matches[matches["analysis"] == s.analysis]
        assert s.n_matched == m["treated_unit_id"].nunique() == s.n_controls_used
    # wider calipers match more people
    by = summary.set_index("analysis")["n_matched"]
    assert by["matched_caliper_0.1"] <= by["matched"] <= by["matched_caliper_0.5"]
    profile = read_extract(con, "analysis.unmatched_profile", eid)
    main = summary.set_index("analysis").loc["matched"]
    assert (profile.loc[profile["analysis"] == "matched", "n_unmatched"]
            == main["n_treated"] - main["n_matched"]).all()


def test_matching_is_deterministic(warehouse):
    con, eid, _ = warehouse
    first = read_extract(con, "analysis.matches", eid)
    write_matches(con, eid, CFG)
    pd.testing.assert_frame_equal(first, read_extract(con, "analysis.matches", eid))


def test_balance_improves_after_matching_and_weighting(warehouse):
    con, eid, meta = warehouse
    bal = read_extract(con, "analysis.balance", eid, "cohort = 'started'")
    worst = bal.assign(a=bal["smd"].abs()).groupby("method")["a"]
    assert worst.max()["before"] > 0.3  # referral is confounded
    for method in ("matched", "weighted_att", "weighted_ate"):
        assert worst.mean()[method] < worst.mean()["before"] / 2, method
    assert worst.max()["weighted_att"] < 0.1
    flagged = int(bal.loc[bal["method"] != "before", "flagged"].sum())
    counts = meta["estimates"]["imbalanced"]
    assert flagged == sum(v for k, v in counts.items() if k.startswith("started/"))


def _matched_frame_from_tables(con, eid) -> pd.DataFrame:
    """The main matched sample rebuilt with SQL: treated outcome rows and control pair rows."""
    cfg = CFG
    return con.execute(f"""
        SELECT m.matched_set, 1 AS treated, o.at_risk_days AS time_days, o.event::INT AS event,
               o.full_12m, o.event_12m, m.treated_key AS person
        FROM analysis.matches m JOIN analysis.outcomes o
             ON o.extract_id = m.extract_id AND o.unit_id = m.treated_unit_id
        WHERE m.extract_id = $eid AND m.analysis = 'matched'
          AND o.family = '{cfg.main_family}' AND o.proof = '{cfg.proof}'
        UNION ALL
        SELECT m.matched_set, 0, o.at_risk_days, o.event::INT, o.full_12m, o.event_12m,
               m.control_key
        FROM analysis.matches m JOIN analysis.rs_outcomes o
             ON o.extract_id = m.extract_id AND o.unit_id = m.control_unit_id
        WHERE m.extract_id = $eid AND m.analysis = 'matched'
          AND o.family = '{cfg.main_family}' AND o.proof = '{cfg.proof}'""",
                       {"eid": eid}).df()


def _person_clusters(frame: pd.DataFrame) -> pd.Series:
    """Matched sets joined when they share a person (a control in one trial who is the treated
    member of a later one), by label propagation: an independent check of set_clusters."""
    label = frame["matched_set"].copy()
    while True:
        by_person = label.groupby(frame["person"]).transform("min")
        new = by_person.groupby(frame["matched_set"]).transform("min")
        if (new == label).all():
            return new
        label = new


def _estimate(con, eid, analysis, measure, arm="") -> pd.Series:
    est = read_extract(con, "analysis.comparison_estimates", eid)
    return est[(est["analysis"] == analysis) & (est["measure"] == measure)
               & (est["arm"] == arm)].iloc[0]


def test_matched_hazard_ratio_and_risk_difference_from_the_tables(warehouse):
    con, eid, _ = warehouse
    frame = _matched_frame_from_tables(con, eid)
    frame["cluster"] = _person_clusters(frame)
    assert frame["cluster"].nunique() < frame["matched_set"].nunique()  # sequential trials
    ref = fit_cox(frame, "time_days", "event", ["treated"], cluster_col="cluster",
                  compute_concordance=False).summary.loc["treated"]
    hr = _estimate(con, eid, "matched", "hr")
    assert hr["estimate"] == pytest.approx(ref["hr"], rel=1e-9)
    assert hr["lower"] == pytest.approx(ref["lower"], rel=1e-9)
    assert hr["n_treated"] == hr["n_comparison"] == frame["matched_set"].nunique()
    full = frame[frame["full_12m"]]
    risk = full.groupby("treated")["event_12m"].mean()
    rd = _estimate(con, eid, "matched", "rd_12m")
    assert rd["estimate"] == pytest.approx(risk[1] - risk[0])
    assert _estimate(con, eid, "matched", "risk_12m", "comparison")["estimate"] == \
        pytest.approx(risk[0])


def test_estimates_tables_hold_every_analysis(warehouse):
    con, eid, _ = warehouse
    est = read_extract(con, "analysis.comparison_estimates", eid)
    assert list(est.columns) == ESTIMATE_COLUMNS
    analyses = set(est["analysis"])
    for name in ("weighted_risk_sets", "weighted_risk_sets_dr", "naive", "matched",
                 "weighted_att", "weighted_ate", "weighted_ato", "weighted_att_trimmed",
                 "matched_itt", "matched_recorded_outcome", "matched_caliper_0.1",
                 "matched_caliper_0.5", "matched_landmark"):
        assert name in analyses, name
    # adherence is never compared with the comparison group (only within the treated)
    assert not any(a.startswith("dose:") or a == "matched_per_protocol" for a in analyses)
    main = est[est["analysis"] == "matched"].set_index(["measure", "arm"])
    for measure in ("hr", "hr_adjusted", "rd_12m", "rr_24m", "rmst_diff_12m", "evalue_hr",
                    "evalue_hr_ci", "mde_hr"):
        assert np.isfinite(main.loc[(measure, ""), "estimate"]), measure
    rmst = main.loc[("rmst_diff_24m", "")]
    assert rmst["lower"] < rmst["estimate"] < rmst["upper"]
    sub = est[est["analysis"].str.startswith("subgroup:") & (est["measure"] == "hr")]
    small = (sub[["events_treated", "events_comparison"]].min(axis=1) < 10)
    assert sub.loc[small, "note"].str.contains("withheld").all()
    assert set(est.loc[est["measure"] == "interaction_p", "analysis"]) >= {
        "subgroup:srp_type", "subgroup:site"}
    primary = est[est["analysis"] == "weighted_risk_sets"].set_index(["measure", "arm"])
    for measure in ("hr", "hr_adjusted", "rd_12m", "rmst_diff_24m"):
        assert np.isfinite(primary.loc[(measure, ""), "estimate"]), measure
    # the primary rests on every treated person with an eligible comparison person
    treated = read_extract(con, "analysis.units", eid)
    n_started = int(((treated["cohort"] == "started") & (treated["arm"] == "treated")).sum())
    assert primary.loc[("hr", ""), "n_treated"] == n_started


def test_weighted_and_matched_curves(warehouse):
    con, eid, _ = warehouse
    wkm = read_extract(con, "analysis.weighted_km", eid)
    assert set(wkm["estimand"]) == {"ATT"}  # only the ATT analysis draws resamples
    assert (wkm.groupby(["estimand", "arm"]).size() == 37).all()
    later = wkm[wkm["time"] > 0]
    assert ((later["lower"] <= later["surv"]) & (later["surv"] <= later["upper"])).all()
    assert (later["upper"] - later["lower"]).max() > 0.02
    mkm = read_extract(con, "analysis.matched_km", eid)
    assert set(mkm["arm"]) == {"treated", "comparison"}
    assert mkm.groupby("arm")["surv"].apply(lambda s: s.is_monotonic_decreasing).all()
    overlap = read_extract(con, "analysis.overlap", eid)
    share = overlap[(overlap["cohort"] == "started") & (overlap["stat"] == "share_outside")]
    assert set(share["arm"]) == {"treated", "comparison"} and share["value"].between(0, 1).all()


def test_weighted_hazard_ratio_reports_the_bootstrap_se(warehouse):
    from pipeline.comparison import evalue

    con, eid, _ = warehouse
    hr = _estimate(con, eid, "weighted_att", "hr")
    robust = _estimate(con, eid, "weighted_att", "hr_robust")
    assert hr["estimate"] == robust["estimate"]
    assert "bootstrap SE (10 resamples" in hr["note"]
    assert hr["upper"] / hr["lower"] != pytest.approx(robust["upper"] / robust["lower"],
                                                      rel=1e-3)
    # the E-value of the CI uses the reported (bootstrap) limit
    ev = evalue(hr["estimate"], hr["lower"], hr["upper"], measure="HR", rare=False)
    assert _estimate(con, eid, "weighted_att", "evalue_hr_ci")["estimate"] == \
        pytest.approx(ev["evalue_ci"])
