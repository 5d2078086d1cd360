"""Bounded risk sets: a trial draws at most about ``max_controls_per_trial`` candidates, a simple
random sample within each (site, week) bucket whose sampling weights add back up to the
bucket, so weighted totals over the drawn pairs equal totals over the whole risk set."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import duckdb
import pytest

from pipeline.cohort.build import build_units, link_persons
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT
from tests.cohort.builders import stage_rows
from tests.cohort.test_cohort_hand_made import offence, person

EID = "sampling"
EXTRACTION = dt.date(2024, 12, 31)
QUALIFYING = dt.date(2022, 1, 12)  # the treated person's qualifying offence
INDEX = QUALIFYING + dt.timedelta(days=60)  # window: qualifying date ± 45 days
N_CANDIDATES = 300


def _candidates_dates() -> list[dt.date]:
    """Offence dates spread over whole weeks lying inside the window (so that every member
    of a drawn bucket is eligible and the weights must add up exactly)."""
    epoch = dt.date(1970, 1, 1)
    first_week = (QUALIFYING - dt.timedelta(days=30) - epoch).days // 7 + 1
    weeks = [first_week + i for i in range(8)]
    return [epoch + dt.timedelta(days=7 * weeks[i % 8] + i % 7) for i in range(N_CANDIDATES)]


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    keys = [f"PK{i:016X}" for i in range(1, N_CANDIDATES + 2)]
    treated, pool = keys[0], keys[1:]
    offences = [offence(1, treated, QUALIFYING.isoformat())]
    offences += [offence(i + 2, k, d.isoformat())
                 for i, (k, d) in enumerate(zip(pool, _candidates_dates(), strict=True))]
    stage_rows(
        con, EID, EXTRACTION, police_persons=[person(k) for k in keys],
        police_offences=offences,
        clinic_referrals=[{"referral_key": "RF00000001", "person_key": treated,
                           "referral_date": "2022-02-01", "referral_source": "police",
                           "decision": "accepted", "decision_date": "2022-02-05"}],
        clinic_sessions=[{"session_key": "SE0000000001", "referral_key": "RF00000001",
                          "session_date": INDEX.isoformat(), "session_type": "treatment",
                          "attended": True}])
    link_persons(con, EID)
    return con


def _pairs(con, cap: int | None):
    cfg = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
    cfg = dataclasses.replace(cfg, comparison=dataclasses.replace(
        cfg.comparison, max_controls_per_trial=cap))
    build_units(con, EID, cfg, EXTRACTION)
    return con.execute("SELECT person_key, sampling_weight, qualifying_date FROM "
                       "analysis.risk_sets WHERE cohort = 'started' ORDER BY person_key").df()


def test_without_a_bound_every_eligible_person_is_in_the_risk_set(con):
    pairs = _pairs(con, None)
    assert len(pairs) == N_CANDIDATES
    assert (pairs["sampling_weight"] == 1).all()


def test_a_bound_draws_few_candidates_whose_weights_add_up_to_the_risk_set(con):
    cap = 30
    pairs = _pairs(con, cap)
    weeks = 14  # the window (91 days) touches 14 calendar weeks
    assert len(pairs) <= math.ceil(cap / weeks) * 8  # 8 weeks hold candidates, 3 drawn each
    assert len(pairs) < N_CANDIDATES / 5
    assert pairs["person_key"].is_unique
    # a Horvitz-Thompson total: drawn slots that fall on an ineligible bucket member (here
    # the treated person, whose own qualifying offence shares a week with candidates) are
    # filtered out after the draw, so the total is an estimate, exact here up to that one
    assert abs(pairs["sampling_weight"].sum() - N_CANDIDATES) <= pairs["sampling_weight"].max()
    assert (pairs["sampling_weight"] > 1).all()


def test_the_draw_is_deterministic_and_depends_on_the_seed(con):
    first = _pairs(con, 30)["person_key"].tolist()
    assert _pairs(con, 30)["person_key"].tolist() == first
    cfg = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
    other = dataclasses.replace(cfg, seed=cfg.seed + 1, comparison=dataclasses.replace(
        cfg.comparison, max_controls_per_trial=30))
    build_units(con, EID, other, EXTRACTION)
    drawn = con.execute("SELECT person_key FROM analysis.risk_sets WHERE cohort = 'started' "
                        "ORDER BY person_key").df()["person_key"].tolist()
    assert drawn != first
