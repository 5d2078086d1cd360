"""The generator's known truth is recovered by the cohort and survival statistics."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipeline.analysis.frames import cohort_frame
from pipeline.analysis.survival_results import survival_contrast
from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.contracts.schema import load_contracts
from pipeline.ingest.load import load_raw, stage
from pipeline.ingest.manifest import read_manifest
from pipeline.settings import PROJECT_ROOT
from pipeline.survival import kaplan_meier, survival_at
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams

CFG = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")


def build(tmp: Path, **params) -> tuple[duckdb.DuckDBPyConnection, str, dict]:
    ex = generate(SynthParams(**params))
    folder = write_extract(ex, tmp / "landing", tmp / "truth")
    con = duckdb.connect()
    m = read_manifest(folder)
    for contract in load_contracts().values():
        load_raw(con, m, contract)
        stage(con, m.extract_id, contract)
    link_persons(con, m.extract_id)
    build_units(con, m.extract_id, CFG, m.extraction_date)
    write_measures(con, m.extract_id, CFG, m.extraction_date)
    return con, m.extract_id, ex.truth


def hr(est, measure):
    row = est[est["measure"] == measure].iloc[0]
    return row["estimate"], row["lower"], row["upper"]


@pytest.fixture(scope="module")
def unconfounded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("u"), n_people=12000, seed=2024, confounding=0.0)


def test_unconfounded_hazard_ratio_recovers_truth(unconfounded):
    con, eid, truth = unconfounded
    frame = cohort_frame(con, eid, CFG, family="any", proof="recorded")
    est, lo, hi = hr(survival_contrast(frame, CFG, "t", adjust=False), "hr_unadjusted")
    assert lo < truth["true_hr"] < hi
    assert abs(math.log(est / truth["true_hr"])) < 0.12


def test_unconfounded_km_curves_recover_expected_risks(unconfounded):
    con, eid, truth = unconfounded
    frame = cohort_frame(con, eid, CFG, family="any", proof="recorded")
    for arm, key in (("treated", "att_risk_treated_12m"), ("comparison",
                                                           "att_risk_untreated_12m")):
        sub = frame[frame["arm"] == arm]
        s, lo, hi = survival_at(kaplan_meier(sub["time_days"], sub["event"]), 365)
        # custody and deaths make the observed risk a little lower than the process truth
        assert abs((1 - s) - truth[key]) < 0.05, (arm, 1 - s, truth[key])


def test_confounded_naive_is_biased_and_adjustment_recovers(tmp_path):
    con, eid, truth = build(tmp_path, n_people=12000, seed=99, confounding=1.0)
    frame = cohort_frame(con, eid, CFG, family="any", proof="recorded")
    est = survival_contrast(frame, CFG, "t")
    naive, _, _ = hr(est, "hr_unadjusted")
    adjusted, lo, hi = hr(est, "hr_adjusted")
    log_true = np.log(truth["true_hr"])
    assert abs(np.log(naive) - log_true) > 0.1  # referral on risk factors biases the naive HR
    assert abs(np.log(adjusted) - log_true) < 0.1
    assert lo < truth["true_hr"] < hi
