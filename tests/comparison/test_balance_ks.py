"""KS statistics, balance of stacked sequential-trial frames and overlap (ATO) weights.

References: scipy's two-sample KS statistic (unit weights); a brute-force weighted ECDF;
MatchIt's "eCDF Max" for lalonde (the getting-started vignette, kosukeimai/MatchIt
``articles/MatchIt.md``: ``summary(m.out0)`` and ``summary(m.out1, un = FALSE)``), which is
cobalt's ``col_w_ks``; the score-equation balance property of overlap weights (Li, Morgan &
Zaslavsky 2018, JASA 113:390, Theorem 3).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.analysis.balance_tables import BALANCE_COLUMNS, balance_rows, imbalance_counts
from pipeline.comparison import fit_propensity, ipw_weights, match_from_groups
from pipeline.comparison.balance import balance_table, weighted_ks
from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _brute_ks(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """max |F1 - F0| over the distinct values, one value at a time (the definition)."""
    t = t.astype(bool)
    out = 0.0
    for v in np.unique(x):
        f1 = w[t & (x <= v)].sum() / w[t].sum()
        f0 = w[~t & (x <= v)].sum() / w[~t].sum()
        out = max(out, abs(f1 - f0))
    return out


# ---------------------------------------------------------------- KS statistic


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_unit_weights_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0, 1, 150), rng.normal(0.4, 1.3, 90)]
    x = np.round(x, 1)  # plenty of ties, within and across groups
    t = np.r_[np.ones(150), np.zeros(90)]
    ref = stats.ks_2samp(x[t == 1], x[t == 0]).statistic
    assert weighted_ks(x, t) == pytest.approx(ref, abs=1e-12)
    assert weighted_ks(x, 1 - t) == pytest.approx(ref, abs=1e-12)  # symmetric


def test_weighted_ks_equals_brute_force_ecdf():
    rng = np.random.default_rng(5)
    n = 400
    x = rng.integers(0, 25, n).astype(float)
    t = (rng.random(n) < 0.35).astype(int)
    w = rng.exponential(1.0, n) * (rng.random(n) > 0.1)  # some zero weights
    assert weighted_ks(x, t, w) == pytest.approx(_brute_ks(x, t, w), abs=1e-12)
    df = pd.DataFrame({"t": t, "x": x, "b": (x > 12).astype(int)})
    tab = balance_table(df, ["x", "b"], "t", weights=w)
    assert tab.loc["x", "ks"] == pytest.approx(_brute_ks(x, t, w), abs=1e-12)
    # binary: the ECDF difference at 0 is the difference in (weighted) proportions
    b = df["b"].to_numpy(float)
    assert tab.loc["b", "ks"] == pytest.approx(_brute_ks(b, t, w), abs=1e-12)
    assert tab.loc["b", "ks"] == pytest.approx(
        abs(tab.loc["b", "mean_treated"] - tab.loc["b", "mean_control"]), abs=1e-12)


def test_ks_rejects_an_empty_group():
    with pytest.raises(ValueError, match="positive total weight"):
        weighted_ks(np.array([1.0, 2.0]), np.array([1, 0]), np.array([1.0, 0.0]))


# MatchIt 4.x getting-started vignette, lalonde, logistic score on age, educ, race, married,
# nodegree, re74, re75: "eCDF Max" before matching and after 1:1 nearest-neighbour matching
# (the matching of REFERENCE_RESULTS "LaLonde / Dehejia-Wahba NSW").
MATCHIT_ECDF_MAX = {
    "distance": (0.6444, 0.4216),
    "age": (0.1577, 0.2541),
    "educ": (0.1114, 0.0757),
    "black": (0.6404, 0.3730),
    "hispan": (0.0827, 0.1568),
    "white": (0.5577, 0.2162),
    "married": (0.3236, 0.0216),
    "nodegree": (0.1114, 0.0703),
    "re74": (0.4470, 0.2757),
    "re75": (0.2876, 0.2054),
}


def test_matchit_lalonde_ecdf_max(lalonde):
    d = lalonde.assign(hispan=(lalonde["race"] == "hispan").astype(int))
    model = fit_propensity(d, "treat", ["age", "educ", "race", "married", "nodegree", "re74",
                                        "re75"], categorical=["race"])
    d = d.assign(distance=model.scores)
    rows = list(MATCHIT_ECDF_MAX)
    before = balance_table(d, rows, "treat")
    res = match_from_groups(d, "rownames", "treat", "distance", caliper=None, order="largest")
    w = d["rownames"].map(res.weights().set_index("id")["weight"]).fillna(0.0)
    after = balance_table(d, rows, "treat", weights=w)
    for cov, (ref_before, ref_after) in MATCHIT_ECDF_MAX.items():
        assert before.loc[cov, "ks"] == pytest.approx(ref_before, abs=1e-4), cov
        assert after.loc[cov, "ks"] == pytest.approx(ref_after, abs=1e-3), cov


# ---------------------------------------------------------------- stacked trial frames


@pytest.fixture(scope="module")
def stacked() -> pd.DataFrame:
    """30 trials, one treated person each and 1-6 controls drawn from a pool of 40 people
    (so people recur as controls across trials), weight 1/controls-in-trial; trial 29's
    controls all have weight 0 (nobody matched)."""
    rng = np.random.default_rng(3)
    parts = []
    for k in range(30):
        nc = int(rng.integers(1, 7))
        people = rng.choice(40, nc, replace=False)
        wc = np.full(nc, 0.0 if k == 29 else 1.0 / nc)
        parts.append(pd.DataFrame({
            "trial": k, "person": np.r_[1000 + k, people], "treated": np.r_[1, np.zeros(nc)],
            "age": np.r_[rng.normal(40, 8), rng.normal(37, 9, nc)].round(),
            "flag": np.r_[rng.random() < 0.6, rng.random(nc) < 0.4].astype(int),
            "weight": np.r_[1.0, wc]}))
    return pd.concat(parts, ignore_index=True)


def test_stacked_frame_pools_rows_with_their_weights(stacked):
    tab = balance_table(stacked, ["age", "flag"], "treated", "weight", trial_col="trial")
    # pooled = balance of the weighted stacked sample, trial ignored
    plain = balance_table(stacked, ["age", "flag"], "treated", "weight")
    pd.testing.assert_frame_equal(tab[plain.columns], plain)
    t = stacked["treated"].to_numpy()
    w = stacked["weight"].to_numpy()
    x = stacked["age"].to_numpy()
    assert tab.loc["age", "ks"] == pytest.approx(_brute_ks(x, t, w), abs=1e-12)
    # ATT denominator: SD of the treated rows (one per trial), unweighted
    assert tab.loc["age", "sd_denominator"] == pytest.approx(np.std(x[t == 1], ddof=1))


def test_within_trial_summary_by_brute_force(stacked):
    tab = balance_table(stacked, ["age", "flag"], "treated", "weight", trial_col="trial")
    for cov in ("age", "flag"):
        s = tab.loc[cov, "sd_denominator"]
        diffs, wts = [], []
        for _, g in stacked.groupby("trial"):
            tr, co = g[g["treated"] == 1], g[(g["treated"] == 0) & (g["weight"] > 0)]
            if co.empty:
                continue  # trial 29: no weighted controls, left out
            m0 = np.average(co[cov], weights=co["weight"])
            diffs.append(abs(np.average(tr[cov], weights=tr["weight"]) - m0) / s)
            wts.append(tr["weight"].sum())
        assert len(diffs) == 29
        assert tab.loc[cov, "trial_mean_abs_smd"] == pytest.approx(np.average(diffs, weights=wts))
        assert tab.loc[cov, "trial_max_abs_smd"] == pytest.approx(max(diffs))
    with pytest.raises(ValueError, match="missing values"):
        balance_table(stacked.assign(trial=np.nan), ["age"], "treated", "weight",
                      trial_col="trial")


def test_balance_rows_on_stacked_and_weighted_frames(stacked):
    cfg = dataclasses.replace(load_config(ROOT / "config" / "evaluation.yaml"),
                              covariates=("age", "flag"), categorical=())
    units = stacked.drop_duplicates("person").drop(columns=["trial", "weight"])
    ps = fit_propensity(units, "treated", ["age", "flag"]).scores
    weights = {"att": ipw_weights(ps, units["treated"], "ATT"),
               "ATO": ipw_weights(ps, units["treated"], "ATO")}
    matched = stacked.rename(columns={"trial": "matched_set"})
    out = balance_rows("started", units, cfg, matched=matched, weights=weights,
                       stacked={"trials": stacked}, trial_col="trial")
    assert list(out.columns) == BALANCE_COLUMNS
    assert out["method"].unique().tolist() == ["before", "matched", "trials", "weighted_att",
                                               "weighted_ato"]
    by = out.set_index(["method", "covariate"])
    # the trial column is "trial" here, so only the "trials" frame gets the summary
    assert by.loc[("trials", "age"), "trial_mean_abs_smd"] > 0
    assert by.loc[("matched", "age"), ["trial_mean_abs_smd", "trial_max_abs_smd"]].isna().all()
    p = units.groupby("treated")["flag"].mean()
    assert by.loc[("before", "flag"), "ks"] == pytest.approx(abs(p[1] - p[0]))
    # ATO weights balance the score model's terms exactly
    assert by.loc[("weighted_ato", "age"), "smd"] == pytest.approx(0, abs=1e-8)
    counts = imbalance_counts(out)
    assert set(counts) == {"started/matched", "started/trials", "started/weighted_att",
                           "started/weighted_ato"}
    with pytest.raises(ValueError, match="unknown estimand"):
        balance_rows("started", units, cfg, weights={"atm": weights["att"]})


# ---------------------------------------------------------------- overlap weights


def test_ato_weights_values():
    ps = np.array([0.2, 0.7, 0.4, 0.9])
    t = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(ipw_weights(ps, t, "ATO"), [0.8, 0.3, 0.4, 0.9])
    np.testing.assert_allclose(ipw_weights(ps, t, "ATO", stabilized=False),
                               ipw_weights(ps, t, "ato"))
    np.testing.assert_allclose(ipw_weights(ps, t, "ATO", trim=(0.3, 0.8)), [0, 0.3, 0.4, 0])


def test_ato_exact_balance_on_every_term_of_the_score_model(nhefs_complete):
    from .conftest import NHEFS_CATEGORICAL, NHEFS_COVARIATES, NHEFS_SQUARES

    model = fit_propensity(nhefs_complete, "qsmk", NHEFS_COVARIATES, NHEFS_CATEGORICAL,
                           squares=NHEFS_SQUARES)
    t = nhefs_complete["qsmk"].to_numpy().astype(bool)
    w = ipw_weights(model.scores, t, "ATO")
    X = model.spec.matrix(nhefs_complete)  # intercept, dummies, linear and squared terms
    m1 = np.average(X[t], axis=0, weights=w[t])
    m0 = np.average(X[~t], axis=0, weights=w[~t])
    scale = np.abs(X).max(axis=0)
    np.testing.assert_allclose((m1 - m0) / scale, 0, atol=1e-8)
    # every level of a factor balances, the reference level included
    tab = balance_table(nhefs_complete, NHEFS_COVARIATES, "qsmk", w, sd="pooled",
                        categorical=NHEFS_CATEGORICAL)
    assert tab["smd"].abs().max() < 1e-8
    # ...which the ATE's inverse-probability weights do not achieve
    ate = balance_table(nhefs_complete, NHEFS_COVARIATES, "qsmk",
                        ipw_weights(model.scores, t, "ATE"), sd="pooled",
                        categorical=NHEFS_CATEGORICAL)
    assert ate["smd"].abs().max() > 1e-4
