"""Propensity model, IP weights, overlap and balance on small or simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from pipeline.comparison import (
    PropensityFitError,
    balance_table,
    effective_sample_size,
    fit_propensity,
    flag_imbalanced,
    ipw_weights,
    love_plot_data,
    match_from_groups,
    overlap_summary,
    trim_common_support,
)

from .conftest import NHEFS_CATEGORICAL, NHEFS_COVARIATES, NHEFS_SQUARES


@pytest.fixture(scope="module")
def confounded() -> pd.DataFrame:
    """Treatment depends strongly on age, priors and a binary flag."""
    rng = np.random.default_rng(11)
    n = 4000
    age = rng.normal(35, 10, n)
    priors = rng.poisson(2, n).astype(float)
    flag = (rng.random(n) < 0.4).astype(int)
    site = rng.choice(["north", "south", "east"], n)
    lin = -2.0 + 0.06 * (age - 35) + 0.35 * priors + 0.9 * flag + (site == "north") * 0.5
    treated = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "treated": treated,
            "age": age,
            "priors": priors,
            "flag": flag,
            "site": site,
        }
    )


# ---------------------------------------------------------------- propensity model


def test_propensity_matches_statsmodels_formula(nhefs_complete):
    # Independent check of the hand-built design: statsmodels formula with C() terms.
    d = nhefs_complete.copy()
    for c in NHEFS_CATEGORICAL:
        d[c] = d[c].astype(str)
    ref = smf.logit(
        "qsmk ~ C(sex) + C(race) + age + I(age**2) + C(education) + smokeintensity"
        " + I(smokeintensity**2) + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active)"
        " + wt71 + I(wt71**2)",
        data=d,
    ).fit(disp=0)
    model = fit_propensity(d, "qsmk", NHEFS_COVARIATES, NHEFS_CATEGORICAL, squares=NHEFS_SQUARES)
    np.testing.assert_allclose(model.scores, ref.predict(d), rtol=1e-7)
    assert model.params["education[T.2]"] == pytest.approx(ref.params["C(education)[T.2]"])
    # Prediction on new rows re-applies the same coding.
    np.testing.assert_allclose(model.predict(d.iloc[::-1]), model.scores[::-1])
    np.testing.assert_allclose(model.predict_logit(d), np.log(model.scores / (1 - model.scores)))


def test_propensity_reference_level_and_column_order(confounded):
    m = fit_propensity(confounded, "treated", ["age", "site", "priors"], ["site"], squares=["age"])
    assert m.params.index.tolist() == [
        "const",
        "age",
        "age^2",
        "site[T.north]",
        "site[T.south]",
        "priors",
    ]
    m2 = fit_propensity(
        confounded,
        "treated",
        ["age", "site", "priors"],
        ["site"],
        squares=["age"],
        reference={"site": "north"},
    )
    assert "site[T.east]" in m2.params.index and "site[T.north]" not in m2.params.index
    np.testing.assert_allclose(m.scores, m2.scores, rtol=1e-8)  # same model, other coding
    with pytest.raises(ValueError, match="unseen"):
        m.predict(confounded.assign(site="west"))


def test_propensity_perfect_separation_is_a_clear_error():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 50), rng.normal(10, 1, 50)]
    df = pd.DataFrame({"t": np.r_[np.zeros(50), np.ones(50)].astype(int), "x": x})
    with pytest.raises(PropensityFitError, match="separation"):
        fit_propensity(df, "t", ["x"])


def test_propensity_quasi_separation_names_the_level():
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame(
        {"t": rng.integers(0, 2, n), "x": rng.normal(size=n), "site": rng.choice(["a", "b"], n)}
    )
    df.loc[:4, "site"] = "tiny"
    df.loc[:4, "t"] = 1  # everyone at site "tiny" is treated
    with pytest.raises(PropensityFitError, match="tiny"):
        fit_propensity(df, "t", ["x", "site"], ["site"])


def test_propensity_rejects_constant_and_missing(confounded):
    with pytest.raises(PropensityFitError, match="variation"):
        fit_propensity(confounded.assign(c=1.0), "treated", ["age", "c"])
    bad = confounded.copy()
    bad.loc[3, "age"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        fit_propensity(bad, "treated", ["age"])


# ---------------------------------------------------------------- overlap


def test_overlap_summary_and_trimming():
    ps = np.array([0.05, 0.2, 0.5, 0.7, 0.1, 0.3, 0.6, 0.9])
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = overlap_summary(ps, t)
    assert s["support"] == (0.1, 0.7)  # max of mins, min of maxes
    assert s["n_treated_outside"] == 1 and s["share_treated_outside"] == 0.25
    assert s["n_control_outside"] == 1 and s["share_control_outside"] == 0.25
    assert s["quantiles"].loc[0.5, "treated"] == pytest.approx(0.35)
    keep = trim_common_support(ps, t)
    assert keep.tolist() == [False, True, True, True, True, True, True, False]
    keep2 = trim_common_support(ps, t, bounds=(0.1, 0.6))
    assert keep2.tolist() == [False, True, True, False, True, True, True, False]


# ---------------------------------------------------------------- weights


def test_att_weights_treated_are_one_and_controls_are_odds():
    ps = np.array([0.2, 0.5, 0.8, 0.25, 0.5])
    t = np.array([1, 1, 1, 0, 0])
    w = ipw_weights(ps, t, "ATT", stabilized=False)
    np.testing.assert_allclose(w[:3], 1.0)
    np.testing.assert_allclose(w[3:], [0.25 / 0.75, 1.0])
    ws = ipw_weights(ps, t, "ATT", stabilized=True)
    np.testing.assert_allclose(ws[:3], 1.0)
    np.testing.assert_allclose(ws[3:], w[3:] * (2 / 5) / (3 / 5))


def test_ate_weights_and_stabilisation():
    ps = np.array([0.2, 0.5, 0.25, 0.5])
    t = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(
        ipw_weights(ps, t, "ATE", stabilized=False), [5.0, 2.0, 1 / 0.75, 2.0]
    )
    np.testing.assert_allclose(
        ipw_weights(ps, t, "ATE", stabilized=True), [2.5, 1.0, 0.5 / 0.75, 1.0]
    )
    np.testing.assert_allclose(ipw_weights(ps, t, "ATC", stabilized=False), [4.0, 1.0, 1.0, 1.0])
    # ATO (overlap): treated 1 - ps, controls ps, whatever `stabilized`
    np.testing.assert_allclose(ipw_weights(ps, t, "ATO"), [0.8, 0.5, 0.25, 0.5])


def test_trim_and_truncate():
    ps = np.linspace(0.01, 0.99, 99)
    t = (np.arange(99) % 2).astype(int)
    w = ipw_weights(ps, t, "ATE", stabilized=False, trim=(0.1, 0.9))
    assert (w[(ps < 0.1) | (ps > 0.9)] == 0).all()
    assert (w[(ps >= 0.1) & (ps <= 0.9)] > 0).all()
    wq = ipw_weights(ps, t, "ATE", stabilized=False, trim=0.05)
    assert (wq == 0).sum() == 10  # 5% of 99 scores in each tail (np.quantile, inclusive)
    wt = ipw_weights(ps, t, "ATE", stabilized=False, truncate=0.9)
    full = ipw_weights(ps, t, "ATE", stabilized=False)
    assert wt.max() == pytest.approx(np.quantile(full, 0.9))
    with pytest.raises(ValueError):
        ipw_weights(np.array([0.0, 0.5]), np.array([1, 0]))


def test_effective_sample_size():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 1.0, 2.0])) == pytest.approx(16 / 6)
    by = effective_sample_size(np.array([1.0, 3.0, 2.0, 2.0]), np.array([0, 0, 1, 1]))
    assert by == {0: pytest.approx(1.6), 1: pytest.approx(2.0)}


# ---------------------------------------------------------------- balance


def test_balance_definitions_by_hand():
    df = pd.DataFrame(
        {
            "t": [1, 1, 1, 0, 0, 0, 0],
            "x": [1.0, 2.0, 6.0, 0.0, 1.0, 1.0, 2.0],
            "b": [1, 1, 0, 0, 0, 1, 0],
        }
    )
    tab = balance_table(df, ["x", "b"], "t")
    v1, v0 = np.var([1, 2, 6], ddof=1), np.var([0, 1, 1, 2], ddof=1)
    assert tab.loc["x", "smd"] == pytest.approx((3.0 - 1.0) / np.sqrt(v1))
    assert tab.loc["x", "var_ratio"] == pytest.approx(v1 / v0)
    # binary: SD sqrt(p(1-p)) with no n-1, no variance ratio
    assert tab.loc["b", "smd"] == pytest.approx((2 / 3 - 1 / 4) / np.sqrt(2 / 3 * 1 / 3))
    assert np.isnan(tab.loc["b", "var_ratio"])
    # KS: ECDFs at 0, 1, 2, 6 are (0, 1/3, 2/3, 1) and (1/4, 3/4, 1, 1): max gap 5/12;
    # binary: |2/3 - 1/4| = 5/12 as well
    assert tab.loc["x", "ks"] == pytest.approx(5 / 12)
    assert tab.loc["b", "ks"] == pytest.approx(5 / 12)
    pooled = balance_table(df, ["x"], "t", sd="pooled")
    assert pooled.loc["x", "smd"] == pytest.approx(2.0 / np.sqrt((v1 + v0) / 2))
    # Weighted: means and variances weighted, denominator unchanged.
    w = np.array([1, 1, 0, 1, 1, 1, 0], dtype=float)
    tw = balance_table(df, ["x"], "t", weights=w)
    assert tw.loc["x", "mean_treated"] == pytest.approx(1.5)
    assert tw.loc["x", "smd"] == pytest.approx((1.5 - 2 / 3) / np.sqrt(v1))
    assert tw.loc["x", "var_ratio"] == pytest.approx(
        np.var([1, 2], ddof=1) / np.var([0, 1, 1], ddof=1)
    )
    # Categorical covariates get one row per level.
    cat = balance_table(df.assign(g=["a", "b", "a", "b", "b", "a", "c"]), ["g"], "t")
    assert cat.index.tolist() == ["g_a", "g_b", "g_c"]


def test_balance_improves_after_ipw_and_matching(confounded):
    covs = ["age", "priors", "flag"]
    m = fit_propensity(confounded, "treated", [*covs, "site"], ["site"])
    before = balance_table(confounded, covs, "treated")
    assert before["smd"].abs().max() > 0.3
    w = ipw_weights(m.scores, confounded["treated"], "ATT")
    after_ipw = balance_table(confounded, covs, "treated", weights=w)
    assert after_ipw["smd"].abs().max() < 0.05
    df = confounded.assign(logit=m.logits)
    res = match_from_groups(df, "id", "treated", "logit", exact="site", caliper=0.2)
    mw = res.weights().set_index("id")["weight"]
    after_m = balance_table(confounded, covs, "treated", weights=df["id"].map(mw).fillna(0))
    assert after_m["smd"].abs().max() < 0.1
    assert flag_imbalanced(before) == before.index[before["smd"].abs() > 0.1].tolist()
    assert flag_imbalanced(after_m) == []
    tidy = love_plot_data(before, {"Matched": after_m, "IPW": after_ipw})
    assert len(tidy) == 9 and list(tidy["sample"].cat.categories) == [
        "Unadjusted",
        "Matched",
        "IPW",
    ]
    assert tidy.loc[tidy["sample"] == "Unadjusted", "imbalanced"].any()
    assert not tidy.loc[tidy["sample"] != "Unadjusted", "imbalanced"].any()
    # Ordered by unadjusted |SMD|, largest first.
    first = tidy.loc[tidy["order"] == 0, "covariate"].iloc[0]
    assert first == before["smd"].abs().idxmax()
