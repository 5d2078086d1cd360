"""Named degenerate shapes: each produces the shape it promises, and the default stays as it was."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.extract_format import EXTRACT_FILES, sha256_file
from pipeline.synth.cli import main as synth_main
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from pipeline.synth.shapes import SHAPES

SH_CODES = ["S2", "S4", "S2A", "S4A", "SPOB"]
# SHA-256 of the files of SynthParams(n_people=400, seed=1) before the shapes existed
GOLDEN = {
    "police_persons.csv": "4ae586939ebe28dd1ea5ac510fc565d90202ca47a14e69dac0852bdbfa3dfff6",
    "police_offences.csv": "e3b88fd59fbea4c08eed8cdea3e6a4faea17d8a92e1195461147a65834931129",
    "clinic_referrals.csv": "7aa8ef9f21306758f647baf7af666cc44a46d5d53f4a89880f338240c6a216a5",
    "clinic_sessions.csv": "1a4d0ab234c6aa1298d8cf0e14d65f08478df137803b05346348747a2094e3a4",
}


def make(shape: str, n: int = 600, seed: int = 5, **kw):
    return generate(SynthParams(n_people=n, seed=seed, shape=shape, **kw))


def after_qualifying(ex) -> pd.DataFrame:
    """New offences: committed after the person's qualifying offence, with the truth joined."""
    o = ex.offences.merge(ex.truth_persons, on="person_key")
    return o[o["offence_date"] > o["qualifying_date"]]


def test_default_shape_is_byte_identical_to_before(tmp_path):
    folder = write_extract(generate(SynthParams(n_people=400, seed=1)), tmp_path / "l",
                           tmp_path / "t")
    assert {name: sha256_file(folder / name) for name in EXTRACT_FILES.values()} == GOLDEN
    assert SynthParams(seed=1).extract_id == "synthetic-2026-10-s1"
    assert "shape" not in SynthParams(seed=1).as_json()


def test_every_shape_generates_and_is_named_in_its_extract_id():
    for name in SHAPES:
        params = SynthParams(n_people=300, seed=2, shape=name)
        ex = generate(params)
        assert len(ex.persons) == 300
        assert (name == "default") or params.extract_id.endswith(f"-{name}")
        assert ex.truth["params"].get("shape", "default") == name


def test_unknown_shape_and_explicit_arguments_win():
    with pytest.raises(ValueError, match="unknown shape"):
        SynthParams(shape="no_such_shape")
    assert SynthParams(shape="no_completers").completion_share == 0.0
    assert SynthParams(shape="no_completers", completion_share=0.3).completion_share == 0.3


def test_one_site_and_site_without_comparison():
    assert make("one_site").persons["site"].nunique() == 1
    ex = make("site_without_comparison", n=2000)
    tp = ex.truth_persons.merge(ex.persons, on="person_key")
    at_d = tp[tp["site"] == "SITE_D"]
    assert len(at_d) > 0 and at_d["treated"].mean() > 0.9
    assert tp.loc[tp["site"] != "SITE_D", "treated"].mean() < 0.3


def test_outcome_families_and_events():
    assert not (after_qualifying(make("no_violence"))["offence_code"] == "VAP").any()
    o = after_qualifying(make("no_violence_treated"))
    vap = o["offence_code"] == "VAP"
    assert not (vap & o["treated"] & (o["offence_date"] > o["index_date"])).any()
    assert (vap & ~o["treated"]).any()
    assert after_qualifying(make("no_events")).empty
    ex = make("everyone_reoffends")
    o = after_qualifying(ex)
    convicted = o.loc[o["outcome"] == "convicted", "person_key"].nunique()
    assert convicted / len(ex.persons) > 0.95
    assert not (ex.offences["disposal"] == "custody").any()


def test_deaths_only_and_custody_all_followup():
    ex = make("deaths_only")
    assert after_qualifying(ex).empty
    assert ex.persons["date_of_death"].notna().mean() > 0.3
    ex = make("custody_all_followup")
    tp = ex.truth_persons[ex.truth_persons["treated"]]
    spells = ex.offences[ex.offences["disposal"] == "custody"].merge(tp, on="person_key")
    from_next_day = spells["outcome_date"] == spells["index_date"] + pd.Timedelta(days=1)
    covered = spells.loc[from_next_day & spells["custody_release_date"].isna(), "person_key"]
    assert set(covered) == set(tp["person_key"])
    starts = spells[from_next_day].groupby("person_key")["outcome_date"].min().rename("start")
    later = ex.offences.merge(starts, on="person_key")
    assert not (later["offence_date"] >= later["start"]).any()


def test_completion_and_dose():
    assert not (make("no_completers").referrals["discharge_reason"] == "completed").any()
    ex = make("all_complete")
    assert ex.truth_persons.loc[ex.truth_persons["treated"], "completed"].all()
    ex = make("uniform_dose")
    s = ex.sessions[ex.sessions["session_type"] == "treatment"]
    assert s["attended"].all()
    per = s.groupby("referral_key").size()
    assert per.max() == 12 and (per == 12).mean() > 0.95


def test_short_followup_leaves_less_than_two_years():
    p = SynthParams(shape="short_followup")
    censor = p.extraction_date - dt.timedelta(days=p.grace_days)
    assert (censor - p.study_first_index).days < 730


def test_constant_covariates_and_separation():
    assert (make("all_male").persons["sex"] == "M").all()
    ex = make("treated_male_only")
    tp = ex.truth_persons.merge(ex.persons, on="person_key")
    assert (tp.loc[tp["treated"], "sex"] == "M").all() and (tp["sex"] == "F").any()
    assert not (make("no_prior_custody").offences["disposal"] == "custody").any()
    ex = make("separation", n=1500)
    o = ex.offences.merge(ex.truth_persons, on="person_key")
    violent = o.loc[(o["offence_code"] == "VAP") & (o["offence_date"] < o["qualifying_date"]),
                    "person_key"].unique()
    assert set(ex.referrals["person_key"]) <= set(violent)
    assert ex.truth_persons["treated"].sum() >= 60


def admitted_treated(ex, params: SynthParams) -> int:
    """Starters the main cohort admits under the default configuration (re-derived here)."""
    tp = ex.truth_persons[ex.truth_persons["treated"]].merge(ex.persons, on="person_key")
    last = params.extraction_date - dt.timedelta(days=params.grace_days + 30)
    idx = tp["index_date"]
    ok = ((idx >= pd.Timestamp(params.study_first_index)) & (idx <= pd.Timestamp(last))
          & (idx.dt.year - tp["birth_year"] >= 18)
          & ((idx - tp["qualifying_date"]).dt.days <= 365)
          & ~(tp["date_of_death"] <= idx))
    spells = ex.offences[ex.offences["disposal"] == "custody"].merge(
        tp[["person_key", "index_date"]], on="person_key")
    inside = ((spells["outcome_date"] <= spells["index_date"])
              & ~(spells["custody_release_date"] < spells["index_date"]))
    ok &= ~tp["person_key"].isin(spells.loc[inside, "person_key"])
    return int(ok.sum())


@pytest.mark.parametrize(("shape", "expected"), [("min_treated", 60), ("below_min_treated", 59)])
def test_exact_number_of_treated(shape, expected):
    params = SynthParams(n_people=500, seed=5, shape=shape)
    assert admitted_treated(generate(params), params) == expected


def test_too_few_starters_for_exact_number_is_an_error():
    with pytest.raises(ValueError, match="too few eligible starters"):
        make("min_treated", n=100)


def test_singleton_subgroups():
    ex = make("singleton_subgroups")
    predatory = ex.referrals.loc[ex.referrals["srp_type"] == "predatory", "person_key"]
    assert len(predatory) == 1
    assert ex.truth_persons.set_index("person_key").loc[predatory.iloc[0], "treated"]
    q = ex.offences.merge(ex.truth_persons, on="person_key")
    q = q[(q["offence_date"] == q["qualifying_date"]) & q["offence_code"].isin(SH_CODES)]
    assert q.loc[q["victim_relationship"] == "professional", "person_key"].tolist() == \
        predatory.tolist()


def test_cli_writes_a_named_shape(tmp_path, capsys):
    assert synth_main(["--people", "300", "--seed", "4", "--shape", "one_site",
                       "--landing", str(tmp_path / "l"), "--truth", str(tmp_path / "t")]) == 0
    folder = tmp_path / "l" / "synthetic-2026-10-s4-one_site"
    persons = pd.read_csv(folder / "police_persons.csv")
    assert np.unique(persons["site"]).tolist() == ["SITE_A"]
    assert synth_main(["--list-shapes"]) == 0
    assert "uniform_dose" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        synth_main(["--shape", "no_such_shape"])
