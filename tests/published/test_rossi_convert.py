"""The Rossi converter: deterministic, exact times, the covariates where the contract has room."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.published import rossi
from pipeline.published.deliver import write_rossi, write_rossi_config


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return rossi.load()


@pytest.fixture(scope="module")
def tables(data) -> dict[str, pd.DataFrame]:
    return rossi.rossi_tables(data)


def days_after_release(dates: pd.Series) -> np.ndarray:
    return (pd.to_datetime(dates) - pd.Timestamp(rossi.RELEASE)).dt.days.to_numpy()


def test_written_extract_is_byte_identical_twice(tmp_path):
    first = json.loads((write_rossi(tmp_path / "a") / "manifest.json").read_text())
    second = json.loads((write_rossi(tmp_path / "b") / "manifest.json").read_text())
    assert first == second
    assert first["files"]["police_persons.csv"]["rows"] == 432
    assert first["extraction_date"] == rossi.EXTRACTION.isoformat()


def test_arrests_become_proven_offences_seven_days_a_week(data, tables):
    off = tables["police_offences"]
    persons = tables["police_persons"].assign(week=data["week"], arrest=data["arrest"])
    after = off[pd.to_datetime(off["offence_date"]) > pd.Timestamp(rossi.RELEASE)]
    assert after["person_key"].is_unique
    got = after.merge(persons, on="person_key", validate="1:1")
    assert len(got) == data["arrest"].sum()
    np.testing.assert_array_equal(days_after_release(got["offence_date"]), 7 * got["week"])
    assert (got["outcome"] == "convicted").all()
    lag = (pd.to_datetime(got["outcome_date"]) - pd.to_datetime(got["offence_date"])).dt.days
    assert (lag <= rossi.GRACE_DAYS).all()


def test_every_week_52_is_observed_before_the_censoring_date():
    censor = rossi.EXTRACTION - dt.timedelta(days=rossi.GRACE_DAYS)
    assert censor == rossi.RELEASE + dt.timedelta(days=365)  # 12 months as the pipeline counts
    assert censor >= rossi.RELEASE + dt.timedelta(days=7 * 52)


def test_released_the_day_before_the_index_date(tables):
    custody = tables["police_offences"].dropna(subset=["custody_release_date"])
    assert len(custody) == 432
    assert (days_after_release(custody["custody_release_date"]) == -1).all()


def test_financial_aid_is_treatment_from_release(data, tables):
    refs = tables["clinic_referrals"]
    treated = tables["police_persons"].loc[data["fin"] == 1, "person_key"]
    assert set(refs["person_key"]) == set(treated)
    assert (days_after_release(refs["decision_date"]) == 0).all()
    first = tables["clinic_sessions"].groupby("referral_key")["session_date"].min()
    assert (days_after_release(first) == 0).all()


def test_covariates_where_the_contract_has_room(data, tables):
    persons = tables["police_persons"]
    np.testing.assert_array_equal(rossi.RELEASE.year - persons["birth_year"], data["age"])
    assert (persons["ethnicity_group"] == np.where(data["race"] == 1, "Black", "Other")).all()
    off = tables["police_offences"]
    prior = off[off["offence_code"] == "OTH"].groupby("person_key").size()
    np.testing.assert_array_equal(prior.reindex(persons["person_key"], fill_value=0),
                                  data["prio"])


@pytest.mark.parametrize("carry", [True, False])
def test_carriers_only_when_asked(data, carry):
    off = rossi.rossi_tables(data, carry=carry)["police_offences"]
    carried = data[["wexp", "mar", "paro"]].to_numpy().sum() if carry else 0
    assert len(off) == 432 + data["prio"].sum() + data["arrest"].sum() + carried
    assert (off["offence_code"] == "VAP").sum() == (data["wexp"].sum() if carry else 0)


def test_config_is_the_default_with_the_overrides(tmp_path):
    from pipeline.config import load_config

    cfg = load_config(write_rossi_config(tmp_path / "r.yaml", carry=False))
    assert cfg.min_age == 17 and cfg.grace_days == rossi.GRACE_DAYS
    assert cfg.covariates == ("age", "prior_other")
    assert cfg.categorical == ("ethnicity_group",)


def test_config_refuses_another_grace_period(tmp_path):
    from pipeline.published.deliver import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["outcomes"]["grace_days"] = 90
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="grace_days"):
        write_rossi_config(tmp_path / "r.yaml", base=base)


def test_command_line_writes_extract_and_config(tmp_path, capsys):
    from pipeline.published.cli import main

    assert main(["rossi", "--landing", str(tmp_path / "landing"),
                 "--config-out", str(tmp_path / "rossi.yaml")]) == 0
    assert (tmp_path / "landing" / rossi.EXTRACT_ID / "manifest.json").exists()
    assert "prior_violence" in (tmp_path / "rossi.yaml").read_text()
    assert rossi.EXTRACT_ID in capsys.readouterr().out
