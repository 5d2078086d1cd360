"""The researcher API on a published snapshot: frames, headline and re-fits."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.research import open_snapshot, refit_primary
from pipeline.warehouse_io import read_extract

MEASURES = ["estimate", "lower", "upper", "p", "n_treated", "n_comparison",
            "events_treated", "events_comparison"]


@pytest.fixture(scope="module")
def snap(published):
    root, _ = published
    with open_snapshot(root=root) as s:
        yield s


def test_frames_match_the_warehouse(snap, e2e, e2e_con):
    eid = e2e["extract_id"]
    assert snap.extract_id == eid
    stored = read_extract(e2e_con, "analysis.comparison_estimates", eid)
    assert len(snap.estimates()) == len(stored)
    assert set(snap.estimates("weighted_risk_sets")["analysis"]) == {"weighted_risk_sets"}
    cohort = snap.cohort()
    n_units = e2e_con.execute("SELECT count(*) FROM analysis.units WHERE extract_id = ? AND "
                              "cohort = 'started'", [eid]).fetchone()[0]
    assert len(cohort) == n_units and set(cohort["arm"]) == {"treated", "comparison"}
    assert set(snap.outcomes(family="any", proof="recorded")[["family", "proof"]]
               .itertuples(index=False)) == {("any", "recorded")}
    tables = snap.tables()
    assert tables["description"].str.len().min() > 0
    with pytest.raises(KeyError):
        snap.table("no_such_table")


def test_refit_with_the_run_settings_reproduces_the_headline_exactly(snap, e2e, e2e_con):
    stored = read_extract(e2e_con, "analysis.comparison_estimates", e2e["extract_id"],
                          "analysis = 'weighted_risk_sets' AND measure = 'hr'").iloc[0]
    fit = refit_primary(snap)
    row = fit.summary[fit.summary["measure"] == "hr"].iloc[0]
    for col in MEASURES:
        assert row[col] == stored[col], col
    assert fit.hazard_ratio_ == snap.headline()["estimate"] == stored["estimate"]
    adjusted = read_extract(e2e_con, "analysis.comparison_estimates", e2e["extract_id"],
                            "analysis = 'weighted_risk_sets' AND measure = 'hr_adjusted'"
                            ).iloc[0]
    assert fit.hazard_ratio_adjusted_ == adjusted["estimate"]


def test_rematching_on_the_run_covariates_gives_the_run_matching(snap):
    assert refit_primary(snap, rematch=True).hazard_ratio_ == snap.headline()["estimate"]


def test_another_covariate_set_changes_the_adjusted_fit(snap):
    base = refit_primary(snap)
    fit = refit_primary(snap, covariates=["age", "prior_sh", "sex"])
    assert fit.covariates == ("age", "prior_sh", "sex")
    # the risk-set score is re-fitted on the covariates: weights, and so the HR, change
    assert fit.rematched and np.isfinite(fit.hazard_ratio_)
    assert fit.hazard_ratio_ != base.hazard_ratio_
    assert fit.hazard_ratio_adjusted_ != base.hazard_ratio_adjusted_


def test_another_proof_rule_and_a_family_the_pairs_do_not_carry(snap):
    base = refit_primary(snap)
    other = refit_primary(snap, proof="recorded")
    assert other.proof == "recorded"
    hr = other.summary[other.summary["measure"] == "hr"].iloc[0]
    assert hr["events_treated"] + hr["events_comparison"] >= \
        base.summary.iloc[0]["events_treated"] + base.summary.iloc[0]["events_comparison"]
    # risk-set pairs carry outcomes of the main family only (the cost of national scale)
    with pytest.raises(ValueError, match="main family"):
        refit_primary(snap, family="any")


def test_unknown_covariate_is_refused_with_the_choices(snap):
    with pytest.raises(ValueError, match="choose from"):
        refit_primary(snap, covariates=["shoe_size"])
