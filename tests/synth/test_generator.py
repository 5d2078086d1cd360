"""The synthetic extract generator: sizes, determinism, plausible distributions, speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from pipeline.extract_format import EXTRACT_FILES, sha256_file
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams


@pytest.fixture(scope="module")
def big():
    return generate(SynthParams(n_people=20000, seed=11))


def test_sizes_and_keys(big):
    assert len(big.persons) == 20000
    assert big.persons["person_key"].is_unique
    assert big.persons["person_key"].str.fullmatch(r"PK[0-9A-F]{16}").all()
    assert big.offences["offence_key"].is_unique
    assert set(big.referrals["person_key"]) <= set(big.persons["person_key"])
    assert set(big.sessions["referral_key"]) <= set(big.referrals["referral_key"])
    # every person has at least their qualifying offence
    assert set(big.offences["person_key"]) == set(big.persons["person_key"])


def test_distributions_near_parameters(big):
    p = big.persons
    assert abs((p["sex"] == "M").mean() - 0.90) < 0.01
    age = 2022 - p["birth_year"]  # qualifying offences centre on 2022
    assert 31 < age.mean() < 39 and 9 < age.std() < 13
    treated = big.truth_persons["treated"].sum()
    pool = len(p) - treated
    assert 5 <= pool / treated <= 20, "comparison pool 5–20 times the treated group"
    assessed = big.referrals.dropna(subset=["srp_type"])
    shares = assessed["srp_type"].value_counts(normalize=True)
    assert abs(shares["rejected"] - 0.36) < 0.04
    assert abs(shares["intimacy_seeking"] - 0.34) < 0.04
    # ~36% have a prior stalking/harassment conviction before their qualifying offence
    o = big.offences.merge(big.truth_persons[["person_key", "qualifying_date"]], on="person_key")
    prior = o[o["offence_code"].isin(["S2", "S4", "S2A", "S4A", "SPOB"])
              & (o["outcome"] == "convicted") & (o["offence_date"] < o["qualifying_date"])]
    assert abs(prior["person_key"].nunique() / len(p) - 0.36) < 0.03


def test_confounded_referral_and_true_effect(big):
    truth = big.truth
    assert truth["true_hr"] == 0.75
    # the treated are higher-risk than average: the naive comparison is confounded
    tp = big.truth_persons
    assert tp.loc[tp["treated"], "log_risk"].mean() > tp.loc[~tp["treated"], "log_risk"].mean()
    # expected risks under both arms among the treated reflect the hazard ratio
    assert truth["att_risk_treated_12m"] < truth["att_risk_untreated_12m"]
    r1, r0 = truth["att_risk_treated_12m"], truth["att_risk_untreated_12m"]
    implied_hr = np.log(1 - r1) / np.log(1 - r0)
    assert 0.65 < implied_hr < 0.85


def test_unconfounded_switch_removes_selection():
    ex = generate(SynthParams(n_people=20000, seed=5, confounding=0.0))
    tp = ex.truth_persons
    diff = tp.loc[tp["treated"], "log_risk"].mean() - tp.loc[~tp["treated"], "log_risk"].mean()
    assert abs(diff) < 0.06


def test_deterministic_by_seed(tmp_path):
    a = write_extract(generate(SynthParams(n_people=800, seed=3)), tmp_path / "a", tmp_path / "ta")
    b = write_extract(generate(SynthParams(n_people=800, seed=3)), tmp_path / "b", tmp_path / "tb")
    c = write_extract(generate(SynthParams(n_people=800, seed=4)), tmp_path / "c", tmp_path / "tc")
    for name in EXTRACT_FILES.values():
        assert sha256_file(a / name) == sha256_file(b / name)
    assert sha256_file(a / "police_persons.csv") != sha256_file(c / "police_persons.csv")


def test_landing_folder_has_manifest_and_no_truth(tmp_path):
    folder = write_extract(generate(SynthParams(n_people=500, seed=2)), tmp_path / "landing",
                           tmp_path / "truth")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(EXTRACT_FILES.values())
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(folder / name)
        lines = (folder / name).read_text().splitlines()
        assert entry["rows"] == len(lines) - 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*EXTRACT_FILES.values(), "manifest.json"])
    truth_files = list((tmp_path / "truth").rglob("*"))
    assert any(p.name == "truth.json" for p in truth_files)
    header = (folder / "police_persons.csv").read_text().splitlines()[0]
    assert "log_risk" not in header and "treated" not in header


def test_thousand_people_in_about_a_second():
    t0 = time.perf_counter()
    generate(SynthParams(n_people=1000, seed=1))
    assert time.perf_counter() - t0 < 2.0
