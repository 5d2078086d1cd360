"""Hand-made checks of the comparison building blocks: risk-set matching rules, matched
frames, effect rows against independent formulas, bootstrap curves, subgroups, config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.analysis.comparison_effects import effect_rows, sensitivity_rows
from pipeline.analysis.risk_set_matching import (
    MatchSpec,
    match_risk_sets,
    matched_frame,
    set_clusters,
)
from pipeline.analysis.subgroups import dose_band, landmark_matched, subgroup_rows, withheld_note
from pipeline.analysis.survival_bootstrap import fixed_weights, refit_ipw
from pipeline.comparison import fit_propensity, weighted_km_bootstrap
from pipeline.config import ConfigError, load_config
from pipeline.settings import PROJECT_ROOT
from pipeline.survival import rmst

CONFIG = PROJECT_ROOT / "config" / "evaluation.yaml"
CFG = load_config(CONFIG)


def _pairs(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame({"treated_key": [r[0] for r in rows], "person_key": [r[1] for r in rows],
                         "unit_id": [f"started/{r[0]}/{r[1]}" for r in rows],
                         "logit": [r[2] for r in rows]})


def test_matching_counts_each_reason_and_uses_a_person_once():
    treated = pd.Series({"T1": 0.0, "T2": 1.0, "T3": 5.0})
    # T3 has no candidate; A is the nearest candidate of both T1 and T2
    pairs = _pairs([("T1", "A", 0.05), ("T1", "B", 0.5), ("T2", "A", 1.02), ("T2", "C", 1.9)])
    res = match_risk_sets(treated, pairs, MatchSpec(caliper=0.2), caliper_sd=1.0)
    # largest score first: T2 takes A; T1's only candidate within 0.2 is A, now used
    assert set(map(tuple, res.matches[["treated_id", "control_id"]].to_numpy())) == {("T2", "A")}
    assert res.counts["n_pool_exhausted"] == 1
    assert res.counts["n_no_eligible_control"] == 1
    assert res.counts["n_none_within_caliper"] == 0
    assert res.caliper_width == pytest.approx(0.2)
    again = match_risk_sets(treated, pairs, MatchSpec(caliper=0.2, replace=True), 1.0)
    assert sorted(again.matches["control_id"]) == ["A", "A"]
    none = match_risk_sets(treated, pairs, MatchSpec(caliper=0.01), 1.0)
    assert none.counts["n_none_within_caliper"] == 2


def test_set_clusters_join_sets_sharing_a_control():
    m = pd.DataFrame({"matched_set": [1, 2, 3, 4], "control_id": ["a", "a", "b", "c"]})
    c = set_clusters(m)
    assert c[1] == c[2]
    assert len({c[1], c[3], c[4]}) == 3


def test_matched_frame_stacks_sets_with_weights():
    units = pd.DataFrame({"unit_id": ["started/T1", "started/T2", "started/X"],
                          "person_key": ["T1", "T2", "X"], "treated": [1, 1, 0],
                          "time_days": [10, 20, 30]})
    pairs = pd.DataFrame({"unit_id": ["started/T1/A", "started/T1/B", "started/T2/C"],
                          "person_key": ["A", "B", "C"], "treated": [0, 0, 0],
                          "time_days": [5, 6, 7]})
    matches = pd.DataFrame({"matched_set": [1, 1, 2], "treated_id": ["T1", "T1", "T2"],
                            "control_id": ["A", "B", "C"],
                            "control_unit_id": ["started/T1/A", "started/T1/B", "started/T2/C"]})
    mf = matched_frame(units, pairs, matches).set_index("unit_id")
    assert len(mf) == 5 and "started/X" not in mf.index
    assert mf.loc["started/T1/A", "weight"] == 0.5 and mf.loc["started/T2/C", "weight"] == 1.0
    assert mf.loc["started/T1", "matched_set"] == mf.loc["started/T1/B", "matched_set"] == 1
    assert mf.loc["started/T1/B", "time_days"] == 6  # the pair unit's own outcome


def _frame(rng: np.random.Generator, n: int, log_hr: float = -0.4) -> pd.DataFrame:
    """Matched pairs with continuous times (no ties), a pair frailty and 12/24-month flags."""
    sets = np.repeat(np.arange(n), 2)
    treated = np.tile([1, 0], n)
    frailty = np.repeat(rng.gamma(2.0, 0.5, n), 2)
    t = rng.exponential(400.0 / (frailty * np.exp(log_hr * treated)))
    c = rng.uniform(200, 1200, 2 * n)
    time = np.minimum(t, c)
    return pd.DataFrame({
        "matched_set": sets, "treated": treated, "time_days": time,
        "event": (t <= c).astype(int), "person_key": [f"P{i}" for i in range(2 * n)],
        "full_12m": c >= 365, "event_12m": t <= 365, "full_24m": c >= 730,
        "event_24m": t <= 730, "site": "SITE_A", "weight": 1.0})


def test_hazard_ratio_matches_lifelines_cluster_robust():
    lifelines = pytest.importorskip("lifelines")
    df = _frame(np.random.default_rng(3), 300)
    row = effect_rows(df, CFG, "m", cluster_col="matched_set", measures={"hr"}).iloc[0]
    ref = lifelines.CoxPHFitter().fit(df[["time_days", "event", "treated", "matched_set"]],
                                      "time_days", "event", cluster_col="matched_set")
    coef, se = ref.params_["treated"], ref.standard_errors_["treated"]
    assert row["measure"] == "hr"
    assert np.log(row["estimate"]) == pytest.approx(coef, abs=1e-6)
    assert np.log(row["upper"]) == pytest.approx(coef + 1.959964 * se, abs=2e-3)
    assert row["p"] == pytest.approx(2 * stats.norm.sf(abs(coef / se)), rel=0.02)


def test_risks_match_a_two_by_two_table():
    df = _frame(np.random.default_rng(4), 400)
    rows = effect_rows(df, CFG, "m", measures={"risk"}).set_index(["measure", "arm"])
    full = df[df["full_12m"]]
    n1, n0 = (full["treated"] == 1).sum(), (full["treated"] == 0).sum()
    a = full.loc[full["treated"] == 1, "event_12m"].sum()
    b = full.loc[full["treated"] == 0, "event_12m"].sum()
    p1, p0 = a / n1, b / n0
    assert rows.loc[("risk_12m", "treated"), "estimate"] == pytest.approx(p1)
    assert rows.loc[("risk_12m", "treated"), "events_treated"] == a
    rd = rows.loc[("rd_12m", ""), :]
    se = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    assert rd["estimate"] == pytest.approx(p1 - p0)
    assert rd["lower"] == pytest.approx(p1 - p0 - 1.959964 * se, abs=1e-6)
    rr = rows.loc[("rr_12m", ""), :]
    se_log = np.sqrt((1 - p1) / (n1 * p1) + (1 - p0) / (n0 * p0))
    assert rr["upper"] == pytest.approx(p1 / p0 * np.exp(1.959964 * se_log), rel=1e-5)
    assert rows.loc[("per100_diff_12m", ""), "estimate"] == pytest.approx(100 * (p1 - p0))


def test_evalue_and_minimum_detectable_effect():
    counts = {"n_treated": 200, "n_comparison": 200, "events_treated": 80,
              "events_comparison": 100}
    hr = {"estimate": 0.56, "lower": 0.46, "upper": 0.69}
    frame = pd.DataFrame({"treated": [1] * 200 + [0] * 200,
                          "event": [1] * 180 + [0] * 220})
    rows = {r["measure"]: r for r in sensitivity_rows(frame, "m", counts, hr, 0.4, None)}
    # VanderWeele & Ding, common outcome (REFERENCE_RESULTS, E-value row)
    assert rows["evalue_hr"]["estimate"] == pytest.approx(2.35, abs=0.01)
    assert rows["evalue_hr_ci"]["estimate"] == pytest.approx(1.91, abs=0.01)
    rare = {r["measure"]: r for r in sensitivity_rows(frame, "m", counts, hr, 0.05, None)}
    rr = 1 / 0.56
    assert rare["evalue_hr"]["estimate"] == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert rows["mde_hr"]["estimate"] == pytest.approx(np.exp(-z / np.sqrt(180 * 0.25)))


def test_bootstrap_curves_give_the_greenwood_rmst_point():
    df = _frame(np.random.default_rng(5), 200).assign(
        time_days=lambda d: np.ceil(d["time_days"]))  # whole days, as in the warehouse
    boot = fixed_weights(df, np.arange(0, 800), 50, seed=1, cluster_col="matched_set")
    point, reps = boot.rmst(730)
    for i, arm in enumerate((1, 0)):
        sub = df[df["treated"] == arm]
        assert point[i] == pytest.approx(rmst(sub["time_days"], sub["event"], 730)[0])
    assert reps.shape == (50, 2)
    diff = boot.rmst_difference(730)
    assert diff["lower"] < diff["diff"] < diff["upper"]


def test_refit_bootstrap_reproduces_weighted_km_bootstrap():
    rng = np.random.default_rng(8)
    n = 600
    x = rng.normal(size=n)
    treated = (rng.random(n) < 1 / (1 + np.exp(-(x - 0.5)))).astype(int)
    t = np.ceil(rng.exponential(300 / np.exp(0.5 * x - 0.3 * treated)))
    df = pd.DataFrame({"time_days": np.minimum(t, 700), "event": (t <= 700).astype(int),
                       "treated": treated, "x": x})
    grid = np.arange(0, 701)
    ref = weighted_km_bootstrap(df, "time_days", "event", "treated", ["x"], grid, n_boot=40,
                                estimand="ATT", seed=5)
    model = fit_propensity(df, "treated", ["x"])
    boot = refit_ipw(df, lambda f: model.spec.matrix(f), model, grid, 40, 5, "ATT")
    assert boot.point[0] == pytest.approx(ref["surv_treated"].to_numpy(), abs=1e-10)
    assert boot.point[1] == pytest.approx(ref["surv_control"].to_numpy(), abs=1e-10)
    se = np.std(boot.reps, axis=0, ddof=1)
    assert se[1] == pytest.approx(ref["se_control"].to_numpy(), abs=1e-8)
    assert se[1, 365] > 0.01


def test_interaction_test_separates_heterogeneous_from_common_effects():
    rng = np.random.default_rng(9)
    a, b = _frame(rng, 700, log_hr=-0.9), _frame(rng, 700, log_hr=0.0)
    b["matched_set"] += 700
    hetero = pd.concat([a.assign(srp_type="rejected"), b.assign(srp_type="resentful")],
                       ignore_index=True)
    common = pd.concat([a.assign(srp_type="rejected"),
                        _frame(rng, 700, log_hr=-0.9).assign(srp_type="resentful",
                                                              matched_set=lambda d:
                                                              d["matched_set"] + 700)],
                       ignore_index=True)
    for frame, significant in ((hetero, True), (common, False)):
        frame = frame.assign(cluster=frame["matched_set"])
        rows = subgroup_rows(frame, CFG, "srp_type")
        p = rows.loc[rows["measure"] == "interaction_p", "p"].iloc[0]
        assert (p < 0.01) if significant else (p > 0.05)
        levels = rows.loc[rows["measure"] == "hr", "analysis"].tolist()
        assert levels == ["subgroup:srp_type=rejected", "subgroup:srp_type=resentful"]


def test_withheld_note_follows_the_disclosure_threshold_and_minimum_size():
    ok = {"n_treated": 80, "n_comparison": 80, "events_treated": 10, "events_comparison": 12}
    assert withheld_note(ok, CFG) == ""
    assert "events" in withheld_note({**ok, "events_treated": 9}, CFG)
    assert "60 treated" in withheld_note({**ok, "n_treated": 59}, CFG)


def test_dose_bands_and_landmark_sets():
    assert dose_band(pd.Series([1, 9, 10, 15, 16, 30]), (1, 10, 16)).tolist() == \
        ["1-9", "1-9", "10-15", "10-15", "16+", "16+"]
    matched = pd.DataFrame({
        "matched_set": [1, 1, 2, 2], "treated": [1, 0, 1, 0],
        "person_key": ["T1", "C1", "T2", "C2"], "calendar_days": [400, 300, 500, 100],
        "time_days": [400, 300, 500, 100], "event": [0, 1, 0, 1], "weight": 1.0})
    exposure = pd.DataFrame({"person_key": ["T1", "T2"], "sessions_by_landmark": [12, 4],
                             "completed_by_landmark": [1, 0]})
    lm = landmark_matched(matched, exposure, 180)
    assert lm["person_key"].tolist() == ["T1", "C1"]  # C2's follow-up ended before day 180
    assert lm["time_days"].tolist() == [220, 120]
    assert lm["sessions_by_landmark"].tolist() == [12, 12]


def test_comparison_config_defaults_and_validation(tmp_path: Path):
    assert CFG.comparison.caliper == 0.2 and CFG.comparison.k == 1
    assert not CFG.comparison.replace and CFG.comparison.sensitivity_trim == "common_support"
    text = CONFIG.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("caliper: 0.2 ", "caliper: -1 "))
    with pytest.raises(ConfigError, match="caliper"):
        load_config(bad)
    bad.write_text(text.replace("subgroups: [srp_type,", "subgroups: [shoe_size,"))
    with pytest.raises(ConfigError, match="subgroups"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("trim: null ", "trim: [0.05, 0.95] ")
                    .replace("k: 1 ", "k: 2 "))
    cfg = load_config(good)
    assert cfg.comparison.trim == (0.05, 0.95) and cfg.comparison.k == 2


def test_random_order_is_reproducible_with_the_seed():
    rng = np.random.default_rng(12)
    treated = pd.Series(rng.normal(size=40), index=[f"T{i:02d}" for i in range(40)])
    rows = [(t, f"C{c:02d}", float(rng.normal())) for t in treated.index
            for c in rng.choice(30, 6, replace=False)]
    pairs = _pairs(rows)

    def matched(seed: int) -> set:
        res = match_risk_sets(treated, pairs, MatchSpec(caliper=None, order="random",
                                                        seed=seed), 1.0)
        return set(map(tuple, res.matches[["treated_id", "control_id"]].to_numpy()))

    assert matched(1) == matched(1)
    assert any(matched(1) != matched(s) for s in (2, 3, 4))
