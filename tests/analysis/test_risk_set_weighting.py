"""The primary analysis's weights: entropy balancing within risk sets (the weighted
comparison arm has exactly the treated means, which statsmodels' ConditionalLogit, the
earlier risk-set score, does not give), each trial's comparison weights add up to one
treated person, and sampling weights enter as Horvitz-Thompson weights (a drawn candidate
standing for s people weighs as s copies of itself)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.risk_set_weighting import (
    RiskSetScoreError,
    distinct_at_risk,
    risk_set_weights,
)
from pipeline.config import load_config
from pipeline.settings import PROJECT_ROOT

BASE = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")
CFG = dataclasses.replace(BASE, covariates=("age", "prior_sh"), categorical=("sex",))


def _trials(seed: int = 3, n_trials: int = 150, pool: int = 400) -> tuple[pd.DataFrame,
                                                                          pd.DataFrame]:
    """Treated units and risk-set pairs: each trial draws 5-15 controls from a pool of
    people (so people recur across trials); treated people have more prior offences."""
    rng = np.random.default_rng(seed)
    people = pd.DataFrame({"person_key": [f"C{i:04d}" for i in range(pool)],
                           "age": rng.normal(35, 10, pool).round(),
                           "prior_sh": rng.poisson(1.0, pool),
                           "sex": rng.choice(["F", "M"], pool, p=[0.1, 0.9])})
    treated = pd.DataFrame({"person_key": [f"T{i:04d}" for i in range(n_trials)],
                            "age": rng.normal(33, 10, n_trials).round(),
                            "prior_sh": rng.poisson(2.0, n_trials),
                            "sex": rng.choice(["F", "M"], n_trials, p=[0.1, 0.9]),
                            "treated": 1, "arm": "treated",
                            "time_days": rng.integers(1, 700, n_trials),
                            "event": rng.integers(0, 2, n_trials)})
    rows = []
    for t in treated["person_key"]:
        pick = people.sample(int(rng.integers(5, 16)), random_state=int(rng.integers(1e9)))
        rows.append(pick.assign(treated_key=t))
    pairs = pd.concat(rows, ignore_index=True).assign(
        treated=0, arm="comparison", sampling_weight=1.0,
        time_days=lambda f: rng.integers(1, 700, len(f)),
        event=lambda f: rng.integers(0, 2, len(f)))
    return treated, pairs


def test_weighted_comparison_has_exactly_the_treated_means():
    units, pairs = _trials()
    rs = risk_set_weights(units, pairs, CFG)
    f = rs.frame
    x = pd.DataFrame({"age": f["age"], "prior_sh": f["prior_sh"].astype(float),
                      "sex=M": (f["sex"] == "M").astype(float)})
    t, c = f["treated"] == 1, f["treated"] == 0
    treated_means = x[t].mean().to_numpy()
    weighted = (x[c].mul(f.loc[c, "weight"], axis=0).sum() / f.loc[c, "weight"].sum())
    assert weighted.to_numpy() == pytest.approx(treated_means, abs=1e-8)
    assert rs.coef["prior_sh"] > 0.3  # treated people have more prior offences
    # a conditional logistic regression (treated inside their own risk set) does not balance
    from statsmodels.discrete.conditional_models import ConditionalLogit

    ref = ConditionalLogit(f["treated"].to_numpy(), x.to_numpy(),
                           groups=f["trial"].to_numpy()).fit(disp=False, method="newton")
    lp = x[c].to_numpy() @ ref.params
    e = pd.Series(np.exp(lp), index=x[c].index)
    w = e / e.groupby(f.loc[c, "trial"]).transform("sum")
    clogit_means = (x[c].mul(w, axis=0).sum() / w.sum()).to_numpy()
    assert abs(clogit_means[1] - treated_means[1]) > 1e-3


def test_each_trials_comparison_weights_stand_for_one_treated_person():
    units, pairs = _trials()
    f = risk_set_weights(units, pairs, CFG).frame
    ctrl = f[f["treated"] == 0]
    assert ctrl.groupby("trial")["weight"].sum().to_numpy() == pytest.approx(1.0)
    assert (f.loc[f["treated"] == 1, "weight"] == 1).all()
    # weights follow the odds: within a trial, more prior offences -> more weight
    one = ctrl[ctrl["trial"] == ctrl["trial"].iloc[0]]
    lp = one["score_lp"].to_numpy()
    assert one["weight"].to_numpy() == pytest.approx(np.exp(lp) / np.exp(lp).sum())
    # clusters are people: a person who recurs across trials keeps one cluster
    assert f.groupby("person_key")["cluster"].nunique().max() == 1


def test_a_sampling_weight_counts_as_that_many_copies():
    units, pairs = _trials(n_trials=60)
    first = pairs.index[pairs["treated_key"] == pairs["treated_key"].iloc[0]][0]
    copies = pd.concat([pairs, pairs.loc[[first, first]]], ignore_index=True)
    weighted = pairs.copy()
    weighted.loc[first, "sampling_weight"] = 3.0
    a = risk_set_weights(units, copies, CFG)
    b = risk_set_weights(units, weighted, CFG)
    assert b.coef.to_numpy() == pytest.approx(a.coef.to_numpy(), abs=1e-7)
    wa = a.frame[a.frame["treated"] == 0].groupby("person_key")["weight"].sum()
    wb = b.frame[b.frame["treated"] == 0].groupby("person_key")["weight"].sum()
    assert wb.to_numpy() == pytest.approx(wa.reindex(wb.index).to_numpy())


def test_treated_without_controls_are_counted_and_no_trial_is_not_estimable():
    units, pairs = _trials(n_trials=40)
    alone = units.iloc[:3]["person_key"]
    rs = risk_set_weights(units, pairs[~pairs["treated_key"].isin(alone)], CFG)
    assert rs.n_no_control == 3 and rs.n_trials == 37
    with pytest.raises(RiskSetScoreError, match="no treated person"):
        risk_set_weights(units, pairs.iloc[0:0], CFG)


def test_people_at_risk_count_people_not_person_trials():
    frame = pd.DataFrame({"person_key": ["a", "a", "b", "c"], "treated": [0, 0, 0, 1],
                          "weight": [0.5, 0.5, 1.0, 1.0], "time_days": [10, 100, 50, 30]})
    at = distinct_at_risk(frame, [0, 20, 60, 101])
    assert at["comparison"].tolist() == [2, 2, 1, 0]
    assert at["treated"].tolist() == [1, 1, 0, 0]


def test_per_protocol_without_switching_equals_the_intention_to_treat_hazard_ratio():
    from pipeline.analysis.per_protocol import per_protocol_rows
    from pipeline.survival import fit_cox

    units, pairs = _trials(n_trials=80)
    f = risk_set_weights(units, pairs, CFG).frame.assign(
        unit_id=lambda d: d["trial"] + "/" + d["person_key"])
    itt = fit_cox(f, "time_days", "event", ["treated"], weights_col="weight",
                  cluster_col="person_key", compute_concordance=False)
    pp = per_protocol_rows(f, pd.Series(dtype=float), CFG).iloc[0]
    assert pp["reason"] == ""
    assert pp["estimate"] == pytest.approx(float(itt.summary.loc["treated", "hr"]), rel=1e-9)
    assert pp["lower"] == pytest.approx(float(itt.summary.loc["treated", "lower"]), rel=1e-6)


def test_per_protocol_censors_switchers():
    from pipeline.analysis.per_protocol import per_protocol_rows

    units, pairs = _trials(n_trials=80)
    f = risk_set_weights(units, pairs, CFG).frame.assign(
        unit_id=lambda d: d["trial"] + "/" + d["person_key"])
    ctrl = f.loc[f["treated"] == 0, "unit_id"]
    switch = pd.Series(5.0, index=ctrl.iloc[::3].to_numpy())  # a third start on day 5
    pp = per_protocol_rows(f, switch, CFG).iloc[0]
    assert pp["reason"] == "" and "censored" in pp["note"]
    n_censored = int(pp["note"].split("(")[1].split(" censored")[0])
    assert n_censored > 0.8 * len(switch) * (f.loc[f["treated"] == 0, "time_days"] > 5).mean()


def test_per_protocol_over_the_row_bound_is_not_run_and_says_so(monkeypatch):
    from pipeline.analysis import per_protocol as pp_module
    from pipeline.analysis.estimability import explain

    units, pairs = _trials(n_trials=40)
    f = risk_set_weights(units, pairs, CFG).frame.assign(
        unit_id=lambda d: d["trial"] + "/" + d["person_key"])
    monkeypatch.setattr(pp_module, "MAX_ROWS", 10)
    row = pp_module.per_protocol_rows(f, pd.Series(dtype=float), CFG).iloc[0]
    assert row["reason"] == "over_size_bound"
    assert row["estimate"] is None or np.isnan(row["estimate"])
    assert "exceed the bound of 10" in row["note"]
    assert "too large for this analysis" in explain(row["reason"])
