"""Quick version of the trial simulation (benchmarks/trial_simulation.py, docs/trial_simulation.md):
the headline risk-set weighted HR runs end to end in every scenario and lands near the truth;
the generator's new knobs leave the default extract byte-identical."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import trial_simulation as ts
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams

# SHA-256 of a 500-person extract's four CSVs and truth.json (seed 7), computed before the
# simulation knobs (referral delay, adherence, unmeasured confounder) were added
DEFAULT_EXTRACT_SHA256 = "b89f331cd14d37b1ffb007025b6fbee2779b41894264850002079d16f39e2d9e"


def test_new_generator_knobs_leave_the_default_extract_byte_identical(tmp_path):
    extract = generate(SynthParams(n_people=500, seed=7))
    folder = write_extract(extract, tmp_path / "landing", tmp_path / "truth")
    h = hashlib.sha256()
    for name in sorted(p.name for p in folder.glob("*.csv")):
        h.update(name.encode())
        h.update((folder / name).read_bytes())
    h.update(json.dumps(extract.truth, sort_keys=True).encode())
    assert h.hexdigest() == DEFAULT_EXTRACT_SHA256
    assert "unmeasured" not in extract.truth_persons


def test_knobs_change_the_world_as_described():
    base = generate(SynthParams(n_people=1500, seed=3))
    late = generate(SynthParams(n_people=1500, seed=3, referral_delay_shape=1.5,
                                referral_delay_scale=100.0))

    def delay(ex):
        r = ex.referrals.merge(ex.truth_persons[["person_key", "qualifying_date"]])
        return ((r["referral_date"] - r["qualifying_date"]).dt.days).mean()

    assert delay(late) > delay(base) + 50
    u = generate(SynthParams(n_people=1500, seed=3, unmeasured_prevalence=0.4,
                             unmeasured_referral_or=3.0, unmeasured_outcome_hr=0.6))
    tp = u.truth_persons
    assert tp.loc[tp["referred"], "unmeasured"].mean() > tp.loc[~tp["referred"],
                                                                 "unmeasured"].mean() + 0.1
    assert not any("unmeasured" in c for df in (u.persons, u.offences, u.referrals, u.sessions)
                   for c in df.columns)
    adh = generate(SynthParams(n_people=1500, seed=3, adherence_risk_log_or=-2.0)).truth_persons
    t = adh[adh["treated"]]
    assert t.loc[t["completed"], "log_risk"].mean() < t.loc[~t["completed"], "log_risk"].mean()


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("trial_simulation")
    ts.main(["--quick", "--out", str(out), "--docs", str(out / "page.md")])
    reps = ts._read(out / "replicates.jsonl")
    assert (out / "page.md").read_text().startswith("# Trial simulation")
    return reps, pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])


@pytest.mark.slow
def test_every_scenario_runs_end_to_end_near_the_truth(quick):
    reps, summary = quick
    assert reps["error"].isna().all(), reps["error"].dropna().tolist()
    assert set(reps["scenario"]) == set(ts.SCENARIOS)
    for col in ("weighted_risk_sets_log_hr", "weighted_risk_sets_upper", "true_log_hr",
                "weighted_risk_sets_calendar_log_hr", "naive_log_hr"):
        assert np.isfinite(reps[col].astype(float)).all(), col
    err = reps["weighted_risk_sets_log_hr"] - reps["true_log_hr"]
    assert (err.abs() < 0.8).all(), err.tolist()  # one small extract each: a loose band
    assert abs(err.mean()) < 0.3
    effect = reps[reps["scenario"].isin(["effect", "delayed", "adherence", "small"])]
    assert effect["true_log_hr"].between(-0.45, -0.1).all()  # marginal HR near 0.75
    nulls = reps[reps["scenario"].isin(["null", "unmeasured"])]
    assert (nulls["true_log_hr"] == 0).all()
    assert set(summary["estimator"]) >= {"weighted_risk_sets", "matched", "naive"}


def test_headline_thinning_matches_the_generator():
    """The constant thinning of the truth equals the share of generated new offences that
    are proven stalking/harassment offences (on a large extract)."""
    cfg = ts.headline_config()
    ex = generate(SynthParams(n_people=6000, seed=5))
    o = ex.offences.merge(ex.truth_persons[["person_key", "qualifying_date"]])
    new = o[o["offence_date"] > o["qualifying_date"]]
    cap = pd.Timestamp("2026-10-31") - pd.Timedelta(days=400)
    new = new[new["offence_date"] < cap]
    proven = (new["offence_code"].isin(cfg.families["stalking_harassment"])
              & new["outcome"].isin(["convicted", "cautioned"])
              & ((new["outcome_date"] - new["offence_date"]).dt.days <= cfg.grace_days))
    assert proven.mean() == pytest.approx(ts.headline_thinning(cfg), abs=0.015)
