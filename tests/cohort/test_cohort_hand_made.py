"""Cohort construction on a hand-made extract whose every index date and outcome is known."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.cohort.build import build_units, link_persons
from pipeline.cohort.checks import flow_problems, immortal_time_problems
from pipeline.cohort.measures import write_measures
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT
from tests.cohort.builders import stage_rows

EID = "hand-made"
EXTRACTION = dt.date(2024, 12, 31)  # grace 183 days → censoring cap 2024-07-01


def person(key, site="SITE_A", born=1980, death=None):
    return {"person_key": key, "birth_year": born, "sex": "M", "ethnicity_group": "White",
            "site": site, "date_of_death": death}


def offence(n, key, date, code="S2", outcome="nfa", outcome_date=None, victim=None,
            disposal=None, release=None):
    return {"offence_key": f"OF{n:010d}", "person_key": key, "victim_key": victim,
            "offence_date": date, "recorded_date": date, "offence_code": code,
            "victim_relationship": "ex_partner", "outcome": outcome,
            "outcome_date": outcome_date, "disposal": disposal, "custody_release_date": release}


T, C1, C2, C3, C4, C5, C6, C7, C8 = (f"PK{i:016X}" for i in range(1, 10))
V1 = "VK" + "1" * 16


@pytest.fixture(scope="module")
def built():
    con = duckdb.connect()
    stage_rows(
        con, EID, EXTRACTION,
        police_persons=[person(T), person(C1, born=1985), person(C2, site="SITE_E"),
                        person(C3), person(C4, death="2022-03-01"), person(C5), person(C6),
                        person(C7, born=2006), person(C8)],
        police_offences=[
            offence(1, T, "2022-01-10", "S2A", "convicted", "2022-04-01", victim=V1),
            offence(2, T, "2022-09-01", "S2", "convicted", "2022-12-01", victim=V1),
            offence(3, C1, "2022-01-20"),
            offence(4, C1, "2022-05-01", "S4", "convicted", "2023-03-01"),  # proven too late
            offence(5, C1, "2023-01-01", "VAP", "cautioned", "2023-01-15"),
            offence(6, C2, "2022-01-20"),
            offence(7, C3, "2021-06-01"),  # qualifying offence too long before
            offence(8, C4, "2022-01-15"),
            offence(9, C5, "2022-01-25"),
            offence(10, C6, "2022-02-01", "S2", "convicted", "2022-02-20", disposal="custody",
                    release="2022-04-01"),
            offence(11, C7, "2022-01-20"),
            offence(12, C8, "2022-01-05"),
            offence(13, C8, "2022-04-01", "VAP", "convicted", "2022-05-01", disposal="custody",
                    release="2022-08-01"),
            offence(14, C8, "2022-10-01", "S2", "convicted", "2022-11-01"),
        ],
        clinic_referrals=[
            {"referral_key": "RF00000001", "person_key": T, "referral_date": "2022-02-01",
             "referral_source": "police", "decision": "accepted",
             "decision_date": "2022-02-20", "discharge_reason": "completed",
             "discharge_date": "2022-08-01"},
            {"referral_key": "RF00000002", "person_key": C5, "referral_date": "2022-02-15",
             "referral_source": "police", "decision": "declined",
             "decision_date": "2022-02-25"}],
        clinic_sessions=[
            {"session_key": "SE0000000001", "referral_key": "RF00000001",
             "session_date": "2022-03-01", "session_type": "treatment", "attended": False},
            {"session_key": "SE0000000002", "referral_key": "RF00000001",
             "session_date": "2022-03-08", "session_type": "treatment", "attended": True},
            {"session_key": "SE0000000003", "referral_key": "RF00000001",
             "session_date": "2022-03-15", "session_type": "treatment", "attended": True}])
    cfg = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
    link_persons(con, EID)
    counts = build_units(con, EID, cfg, EXTRACTION)
    write_measures(con, EID, cfg, EXTRACTION)
    return con, counts


@pytest.fixture()
def con(built):
    return built[0]


def outcome(con, unit, family="stalking_harassment", proof="proven", cohort="started"):
    cur = con.execute("SELECT o.* FROM analysis.outcomes o JOIN analysis.units u "
                      "USING (extract_id, unit_id) WHERE u.cohort = ? AND u.person_key = ? "
                      "AND o.family = ? AND o.proof = ?", [cohort, unit, family, proof])
    cols = [d[0] for d in cur.description]
    return dict(zip(cols, cur.fetchone(), strict=True))


def test_index_dates_and_risk_set(con, built):
    units = con.execute("SELECT person_key, arm, index_date FROM analysis.units "
                        "WHERE cohort = 'started' ORDER BY arm DESC, person_key").fetchall()
    idx = dt.date(2022, 3, 8)  # first ATTENDED treatment session, not the missed one
    assert units == [(T, "treated", idx), (C1, "comparison", idx), (C8, "comparison", idx)]
    # C2 other site, C3 offence too early, C4 dead, C5 referred, C6 in custody, C7 aged 16
    assert built[1].risk_set_pairs == 2


def test_outcomes_grace_period_censoring_and_custody(con):
    t = outcome(con, T)
    assert t["event"] and t["calendar_days"] == 177 and t["same_victim"]
    assert t["full_12m"] and t["event_12m"]
    c1 = outcome(con, C1)  # proven 304 days after the offence: beyond the 183-day grace
    assert not c1["event"]
    assert c1["calendar_days"] == (dt.date(2024, 7, 1) - dt.date(2022, 3, 8)).days
    assert outcome(con, C1, proof="recorded")["calendar_days"] == 54
    assert outcome(con, C1, family="any")["calendar_days"] == 299
    c8 = outcome(con, C8)
    assert c8["event"] and c8["calendar_days"] == 207
    assert c8["custody_days"] == 92 and c8["at_risk_days"] == 207 - 92


def test_covariates_as_of_index(con):
    row = con.execute("SELECT age, days_since_qualifying, prior_sh, prior_custody "
                      "FROM analysis.covariates JOIN analysis.units USING (extract_id, unit_id) "
                      "WHERE cohort = 'started' AND person_key = ?", [C8]
                      ).fetchone()
    # the post-index custody offence must not count as a prior
    assert row == (42, 62, 0, False)


def test_flow_adds_up(con):
    flow = dict(con.execute("SELECT step, n FROM analysis.cohort_flow WHERE arm = 'comparison' "
                            "AND cohort = 'started'").fetchall())
    assert flow == {"qualifying": 9, "site": 8, "eligible": 2, "never_treated": 2}
    assert flow_problems(con, EID) == []
    assert immortal_time_problems(con, EID) == 0


def test_intention_to_treat_cohort_enters_at_acceptance(con):
    units = con.execute("SELECT person_key, arm, index_date FROM analysis.units "
                        "WHERE cohort = 'itt' ORDER BY arm DESC, person_key").fetchall()
    idx = dt.date(2022, 2, 20)  # decision date of the accepted referral
    # at acceptance T's qualifying offence was 41 days before; C1 (31 days), C4 (36 days, dies
    # only later, on 2022-03-01) and C8 (46 days) are within 45 days of that; C5 was referred
    # on 2022-02-15, before this index date, and C6 is in custody from 2022-02-20
    assert units[0] == (T, "treated", idx)
    assert {u[0] for u in units[1:]} == {C1, C4, C8}
    assert all(u[2] == idx for u in units)


def test_config_window_changes_the_risk_set(con):
    cfg = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
    narrow = dataclasses.replace(cfg, risk_set_window_days=5)  # C1 is 10 days off, C8 5 days
    counts = build_units(con, EID, narrow, EXTRACTION)
    assert counts.risk_set_pairs == 1
    build_units(con, EID, cfg, EXTRACTION)


def test_config_errors_are_one_line(tmp_path: Path):
    from pipeline.config import ConfigError

    bad = tmp_path / "c.yaml"
    text = (PROJECT_ROOT / "config" / "evaluation.yaml").read_text()
    bad.write_text(text.replace("proof: proven", "proof: maybe"))
    with pytest.raises(ConfigError, match="outcomes.proof must be"):
        load_config(bad)
    bad.write_text(text.replace("[VAP]", "[XYZ]"))
    with pytest.raises(ConfigError, match="unknown offence codes"):
        load_config(bad)
