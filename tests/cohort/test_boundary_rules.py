"""Boundary rules a data manager can trip over, each decided and written down once
(docs/evaluation_rules.md): release day, the adult rule with a birth year only, and the days in
a follow-up window."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT
from pipeline.windows import month_days
from tests.cohort.builders import stage_rows
from tests.cohort.test_cohort_hand_made import offence, person

EID = "boundaries"
EXTRACTION = dt.date(2024, 12, 31)
INDEX = dt.date(2022, 3, 8)
T, FREED, HELD, ADULT, MINOR, DIES_364, DIES_366 = (f"PK{i:016X}" for i in range(20, 27))


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    day = INDEX.isoformat()
    stage_rows(
        con, EID, EXTRACTION,
        police_persons=[person(T), person(FREED), person(HELD), person(ADULT, born=2004),
                        person(MINOR, born=2005),
                        person(DIES_364, death=(INDEX + dt.timedelta(364)).isoformat()),
                        person(DIES_366, death=(INDEX + dt.timedelta(366)).isoformat())],
        police_offences=[
            offence(1, T, "2022-01-10"),
            offence(2, FREED, "2022-01-12", "S2", "convicted", "2022-01-20",
                    disposal="custody", release=day),          # released on the index date
            offence(3, HELD, "2022-01-12", "S2", "convicted", "2022-01-20",
                    disposal="custody", release="2022-03-09"),  # released the day after
            offence(4, ADULT, "2022-01-12"), offence(5, MINOR, "2022-01-12"),
            offence(6, DIES_364, "2022-01-12"), offence(7, DIES_366, "2022-01-12")],
        clinic_referrals=[
            {"referral_key": "RF00000001", "person_key": T, "referral_date": "2022-02-01",
             "referral_source": "police", "decision": "accepted",
             "decision_date": "2022-02-20", "discharge_reason": "completed",
             "discharge_date": "2022-08-01"}],
        clinic_sessions=[
            {"session_key": "SE0000000001", "referral_key": "RF00000001",
             "session_date": day, "session_type": "treatment", "attended": True}])
    cfg = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
    # every eligible person must be in the risk set here: no sampling of candidates
    cfg = dataclasses.replace(cfg, comparison=dataclasses.replace(
        cfg.comparison, max_controls_per_trial=None))
    link_persons(con, EID)
    build_units(con, EID, cfg, EXTRACTION)
    write_measures(con, EID, cfg, EXTRACTION)
    return con


def comparison(con) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT person_key FROM analysis.units WHERE cohort = 'started' "
        "AND arm = 'comparison'").fetchall()}


def test_released_on_the_index_date_is_at_liberty_that_day(con):
    chosen = comparison(con)
    assert FREED in chosen
    assert HELD not in chosen


def test_adult_rule_uses_the_age_reached_in_the_index_year(con):
    # born 2004: 18 in 2022, whatever the birthday; born 2005: at most 17
    chosen = comparison(con)
    assert ADULT in chosen and MINOR not in chosen


def test_window_days_are_one_rule():
    assert [month_days(m) for m in (6, 12, 24, 36)] == [182, 365, 730, 1095]


def test_a_year_of_follow_up_is_365_days(con):
    full = dict(con.execute(
        "SELECT u.person_key, o.full_12m FROM analysis.outcomes o JOIN analysis.units u "
        "USING (extract_id, unit_id) WHERE o.family = 'stalking_harassment' "
        "AND o.proof = 'proven' AND u.cohort = 'started'").fetchall())
    assert full[DIES_364] is False  # followed 364 days (52 weeks): not a full year
    assert full[DIES_366] is True
