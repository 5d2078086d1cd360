"""Plan parsing and hashing, the look table, Holm, monthly extracts of one world."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.config import ConfigError, load_config
from pipeline.plan.looks import sequential_table
from pipeline.plan.multiplicity import holm
from pipeline.plan.spec import AnalysisPlan, parse_plan
from pipeline.plan.spending import spent
from pipeline.synth.generator import generate
from pipeline.synth.monthly import cut_extract, month_ends
from pipeline.synth.params import SynthParams

CONFIG = Path(__file__).parents[2] / "config" / "evaluation.yaml"
FAMS = {"stalking_harassment": (), "any": ()}


def _write(tmp_path, change):
    raw = yaml.safe_load(CONFIG.read_text())
    change(raw)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_plan_and_plausible_hr_kept(tmp_path):
    cfg = load_config(CONFIG)
    assert cfg.plan.planned_events == 400 and cfg.plausible_hr == cfg.plan.assumed_hr == 0.75
    old = load_config(_write(tmp_path, lambda r: (r.pop("analysis_plan"),
                                                  r["analysis"].update(plausible_hr=0.8))))
    assert old.plan.assumed_hr == old.plausible_hr == 0.8


@pytest.mark.parametrize("bad", [{"planned_events": 0}, {"spending": "haybittle"},
                                 {"primary_analysis": "naive"}, {"alpha": 0.7},
                                 {"assumed_hr": 1.2},
                                 {"sensitivity_analyses": ["weighted_risk_sets"]},
                                 {"primary_outcome": "any"}, {"looks": 3}, {"alpha": "5%"}])
def test_plan_errors_name_the_key(tmp_path, bad):
    path = _write(tmp_path, lambda r: r["analysis_plan"].update(bad))
    with pytest.raises(ConfigError, match="analysis_plan"):
        load_config(path)


def test_hash_changes_with_content_only():
    a = parse_plan({"planned_events": 400}, "x", "stalking_harassment", FAMS, None)
    b = parse_plan({}, "x", "stalking_harassment", FAMS, None)
    c = parse_plan({"planned_events": 401}, "x", "stalking_harassment", FAMS, None)
    assert a.sha256 == b.sha256 != c.sha256


def _looks(events, hrs, plan):
    ev, est = np.asarray(events, float), np.asarray(hrs, float)
    se = 2 / np.sqrt(ev)
    return sequential_table(ev, est, est * np.exp(-1.96 * se), est * np.exp(1.96 * se), plan)


def test_look_table_crossing_carry_and_final():
    plan = AnalysisPlan(planned_events=200)
    tab = _looks([50, 90, 90, 140, 200, 230], [0.6, 0.7, 0.72, 0.85, 0.7, 0.7], plan)
    assert list(tab["crossed"]) == ["", "", "", "", "reduction", ""]
    assert list(tab["decision"])[4:] == ["reduction", "reduction"]
    assert tab["boundary_z"][1] == tab["boundary_z"][2]  # no new information: same boundary
    assert bool(tab["final"][4]) and bool(tab["after_final"][5])
    assert np.isnan(tab["boundary_z"][5])
    # the repeated CI is wider than the 95% CI and excludes 1 exactly when crossed
    assert tab["rci_upper"][4] < 1 < tab["rci_upper"][3]


def test_nominal_significance_is_not_a_crossing_at_an_early_look():
    tab = _looks([100], [0.65], AnalysisPlan(planned_events=400))
    assert tab["z"][0] < -1.96 and tab["crossed"][0] == ""


def test_not_estimable_look_spends_nothing():
    plan = AnalysisPlan(planned_events=200)
    tab = _looks([40, 100], [np.nan, 0.9], plan)
    assert not tab["estimable"][0] and np.isnan(tab["boundary_z"][0])
    assert tab["alpha_spent"][1] == pytest.approx(float(spent(0.5, 0.05)))


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.010, 0.20, 0.04, 0.5, 0.03]
    assert np.allclose(holm(p), multipletests(p, method="holm")[1])
    out = holm([0.01, None, 0.04])
    assert np.isnan(out[1]) and np.allclose(out[[0, 2]], [0.02, 0.04])


def test_monthly_extracts_accumulate_one_world():
    params = SynthParams(n_people=600, seed=5)
    world = generate(params)
    dates = month_ends(params.extraction_date, 3)
    assert dates == [dt.date(2026, 8, 31), dt.date(2026, 9, 30), dt.date(2026, 10, 31)]
    cuts = [cut_extract(world, params, d) for d in dates]
    last = cuts[-1]
    assert last.offences.equals(world.offences) and last.referrals.equals(world.referrals)
    sizes = [len(c.offences) for c in cuts]
    assert sizes[0] < sizes[1] < sizes[2]
    early = cuts[0]
    assert (early.offences["recorded_date"] <= pd.Timestamp(dates[0])).all()
    known = early.offences["outcome_date"].dropna()
    assert (pd.to_datetime(known) <= pd.Timestamp(dates[0])).all()
    assert set(early.persons["person_key"]) <= set(world.persons["person_key"])
    assert early.truth["extract_id"] == "synthetic-2026-08-s5"
