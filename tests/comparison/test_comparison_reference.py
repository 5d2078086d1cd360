"""Reproduce /work/shared/REFERENCE_RESULTS.md (MatchIt 4.8, Hernán & Robins, LaLonde, E-value).

Each test cites the row it reproduces; tolerances are those stated there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.comparison import (
    balance_table,
    evalue,
    fit_propensity,
    ipw_ate,
    ipw_weights,
    match_from_groups,
    match_nearest,
    weighted_km_at,
    weighted_km_bootstrap,
)

from .conftest import NHEFS_CATEGORICAL, NHEFS_COVARIATES, NHEFS_SQUARES

# ---------------------------------------------------------------- MatchIt lalonde

LALONDE_PS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
BALANCE_ROWS = ["distance", "age", "educ", "black", "white", "married", "re74", "re75"]
# REFERENCE_RESULTS "LaLonde / Dehejia–Wahba NSW", MatchIt lalonde table:
# covariate: (SMD before, VR before, SMD after, VR after); NaN = not reported (binary)
MATCHIT_TABLE = {
    "distance": (1.7941, 0.9211, 0.9739, 0.7566),
    "age": (-0.3094, 0.4400, 0.0718, 0.4568),
    "educ": (0.0550, 0.4959, -0.1290, 0.5721),
    "black": (1.7615, np.nan, 1.0259, np.nan),
    "white": (-1.8819, np.nan, -0.7296, np.nan),
    "married": (-0.8263, np.nan, -0.0552, np.nan),
    "re74": (-0.7211, 0.5181, -0.0505, 1.3289),
    "re75": (-0.2903, 0.9563, -0.0257, 1.4956),
}


@pytest.fixture(scope="module")
def lalonde_ps(lalonde: pd.DataFrame) -> pd.DataFrame:
    model = fit_propensity(lalonde, "treat", LALONDE_PS, categorical=["race"])
    return lalonde.assign(distance=model.scores)


def _check_table(table: pd.DataFrame, which: str, tol: float) -> None:
    smd_i, vr_i = (0, 1) if which == "before" else (2, 3)
    for cov, ref in MATCHIT_TABLE.items():
        assert table.loc[cov, "smd"] == pytest.approx(ref[smd_i], abs=tol), cov
        if np.isnan(ref[vr_i]):
            assert np.isnan(table.loc[cov, "var_ratio"]), cov
        else:
            assert table.loc[cov, "var_ratio"] == pytest.approx(ref[vr_i], abs=tol), cov


def test_matchit_lalonde_balance_before_matching(lalonde_ps):
    # REFERENCE_RESULTS MatchIt lalonde table, "SMD before" / "VR before" (tol 1e-4)
    table = balance_table(lalonde_ps, BALANCE_ROWS, "treat", sd="treated")
    _check_table(table, "before", 1e-4)


def test_matchit_lalonde_balance_after_nearest_matching(lalonde_ps):
    # REFERENCE_RESULTS MatchIt lalonde table, "SMD after" / "VR after" (tol 1e-3):
    # 1:1 greedy NN on the propensity score (MatchIt's distance), no caliper,
    # without replacement, largest score first.
    res = match_from_groups(
        lalonde_ps, "rownames", "treat", "distance", caliper=None, order="largest"
    )
    assert res.counts["n_treated_matched"] == 185
    assert res.matches["control_id"].is_unique
    w = res.weights().set_index("id")["weight"]
    weights = lalonde_ps["rownames"].map(w).fillna(0.0)
    table = balance_table(lalonde_ps, BALANCE_ROWS, "treat", weights=weights)
    _check_table(table, "after", 1e-3)
    # The SMD denominators come from the unmatched sample (MatchIt's s.d.denom).
    before = balance_table(lalonde_ps, BALANCE_ROWS, "treat")
    np.testing.assert_allclose(table["sd_denominator"], before["sd_denominator"])


def test_matchit_lalonde_same_matches_from_pair_table(lalonde_ps):
    # Same MatchIt row, via the risk-set entry point fed all treated x control pairs.
    t = lalonde_ps[lalonde_ps["treat"] == 1][["rownames", "distance"]]
    c = lalonde_ps[lalonde_ps["treat"] == 0][["rownames", "distance"]]
    pairs = t.merge(c, how="cross", suffixes=("_t", "_c")).rename(
        columns={
            "rownames_t": "treated_id",
            "rownames_c": "control_id",
            "distance_t": "treated_ps",
            "distance_c": "control_ps",
        }
    )
    res = match_nearest(
        pairs, caliper=None, treated_score_col="treated_ps", control_score_col="control_ps"
    )
    w = res.weights().set_index("id")["weight"]
    weights = lalonde_ps["rownames"].map(w).fillna(0.0)
    table = balance_table(lalonde_ps, BALANCE_ROWS, "treat", weights=weights)
    _check_table(table, "after", 1e-3)


# ---------------------------------------------------------------- NHEFS chapter 12


@pytest.fixture(scope="module")
def nhefs_ps(nhefs_complete: pd.DataFrame) -> np.ndarray:
    model = fit_propensity(
        nhefs_complete, "qsmk", NHEFS_COVARIATES, NHEFS_CATEGORICAL, squares=NHEFS_SQUARES
    )
    assert len(model.params) == 19  # the book's model: 18 terms + intercept
    return model.scores


def test_nhefs_crude_difference(nhefs_complete):
    # REFERENCE_RESULTS NHEFS: "Crude difference 2.54 kg (1.66, 3.43)" (0.01 / 0.02)
    est = ipw_ate(nhefs_complete["wt82_71"], nhefs_complete["qsmk"], cov_type="nonrobust")
    assert est.estimate == pytest.approx(2.54, abs=0.01)
    assert est.ci_low == pytest.approx(1.66, abs=0.02)
    assert est.ci_high == pytest.approx(3.43, abs=0.02)


def test_nhefs_ip_weights(nhefs_complete, nhefs_ps):
    # REFERENCE_RESULTS NHEFS: "Unstabilised IP weights: mean 1.996, range 1.054–16.700.
    # Stabilised: range 0.331–4.298"
    a = nhefs_complete["qsmk"].to_numpy()
    w = ipw_weights(nhefs_ps, a, estimand="ATE", stabilized=False)
    assert w.mean() == pytest.approx(1.996, abs=1e-3)
    assert w.min() == pytest.approx(1.054, abs=1e-3)
    assert w.max() == pytest.approx(16.700, abs=1e-3)
    sw = ipw_weights(nhefs_ps, a, estimand="ATE", stabilized=True)
    assert sw.min() == pytest.approx(0.331, abs=1e-3)
    assert sw.max() == pytest.approx(4.298, abs=1e-3)


def test_nhefs_ipw_ate_robust_ci(nhefs_complete, nhefs_ps):
    # REFERENCE_RESULTS NHEFS: "IPW ATE 3.4405 kg, robust 95% CI 2.4106–4.4705 (0.01 / 0.02)"
    a = nhefs_complete["qsmk"].to_numpy()
    w = ipw_weights(nhefs_ps, a, estimand="ATE", stabilized=False)
    est = ipw_ate(nhefs_complete["wt82_71"], a, w)
    assert est.estimate == pytest.approx(3.4405, abs=0.01)
    assert est.ci_low == pytest.approx(2.4106, abs=0.02)
    assert est.ci_high == pytest.approx(4.4705, abs=0.02)
    # Stabilised weights give the same point estimate (a saturated MSM).
    sw = ipw_weights(nhefs_ps, a, estimand="ATE", stabilized=True)
    assert ipw_ate(nhefs_complete["wt82_71"], a, sw).estimate == pytest.approx(est.estimate)


# ---------------------------------------------------------------- NHEFS chapter 17


def test_nhefs_ch17_crude_km(nhefs_ch17):
    # REFERENCE_RESULTS NHEFS ch. 17: n = 1629, 318 deaths (102 quitters, 216 non-quitters);
    # crude KM survival at 120 months 0.7617 (quitters) / 0.8201 (0.0001)
    d = nhefs_ch17
    assert len(d) == 1629
    assert d["death"].sum() == 318
    assert d.loc[d["qsmk"] == 1, "death"].sum() == 102
    q = d["qsmk"] == 1
    s1 = weighted_km_at(d.loc[q, "survtime"], d.loc[q, "death"], [120])[0]
    s0 = weighted_km_at(d.loc[~q, "survtime"], d.loc[~q, "death"], [120])[0]
    assert s1 == pytest.approx(0.7617, abs=1e-4)
    assert s0 == pytest.approx(0.8201, abs=1e-4)


def test_nhefs_ch17_weighted_survival_and_bootstrap(nhefs_ch17):
    # REFERENCE_RESULTS NHEFS ch. 17: "Stabilised weights range 0.331–4.205;
    # IP-weighted survival at 120 months 0.8066 / 0.8047 (quitters / non-quitters);
    # difference 0.2% with bootstrap 95% CI about −4.1% to 3.7%; bootstrap SE of the
    # difference ≈ 0.020."
    d = nhefs_ch17
    model = fit_propensity(d, "qsmk", NHEFS_COVARIATES, NHEFS_CATEGORICAL, squares=NHEFS_SQUARES)
    sw = ipw_weights(model.scores, d["qsmk"], estimand="ATE", stabilized=True)
    assert sw.min() == pytest.approx(0.331, abs=1e-3)
    assert sw.max() == pytest.approx(4.205, abs=1e-3)

    res = weighted_km_bootstrap(
        d,
        "survtime",
        "death",
        "qsmk",
        NHEFS_COVARIATES,
        [120],
        n_boot=200,
        estimand="ATE",
        seed=0,
        categorical=NHEFS_CATEGORICAL,
        squares=NHEFS_SQUARES,
    )
    row = res.iloc[0]
    assert row["surv_treated"] == pytest.approx(0.8066, abs=1e-4)
    assert row["surv_control"] == pytest.approx(0.8047, abs=1e-4)
    assert row["diff"] == pytest.approx(0.0019, abs=2e-4)
    assert res.attrs["n_failed"] == 0
    # "≈ 0.020" with 200 resamples: Monte Carlo error of an SE is about SE/sqrt(2B) = 0.001.
    assert row["se_diff"] == pytest.approx(0.020, abs=0.003)
    # Our CI is for quitters - non-quitters; the book reports the reverse contrast.
    assert -row["ci_high_diff"] == pytest.approx(-0.041, abs=0.01)
    assert -row["ci_low_diff"] == pytest.approx(0.037, abs=0.01)
    # Far wider than the naive weighted-Greenwood band (SE 0.0098 in REFERENCE_RESULTS).
    assert row["se_diff"] > 0.015


# ---------------------------------------------------------------- LaLonde experimental


def test_nsw_experimental_att(nsw):
    # REFERENCE_RESULTS "nsw_mixtape experimental sample: ATT 1,794.34 (SE 632.9) (0.5 / 1)"
    # = simple difference in means with the classical (pooled-variance OLS) SE.
    est = ipw_ate(nsw["re78"], nsw["treat"], cov_type="nonrobust")
    assert est.estimate == pytest.approx(1794.34, abs=0.5)
    assert est.se == pytest.approx(632.9, abs=1)


# ---------------------------------------------------------------- E-values


def test_evalue_reference_rows():
    # REFERENCE_RESULTS "E-value (VanderWeele & Ding 2017)" (tol 0.01), all four rows.
    # RR 3.9 -> 7.26
    assert evalue(3.9)["evalue"] == pytest.approx(7.26, abs=0.01)
    # lower limit 1.8 -> 3.0
    assert evalue(3.9, lower=1.8)["evalue_ci"] == pytest.approx(3.0, abs=0.01)
    # RR 0.80 (0.71–0.91) -> 1.81, CI limit 1.43
    r = evalue(0.80, lower=0.71, upper=0.91)
    assert r["evalue"] == pytest.approx(1.81, abs=0.01)
    assert r["evalue_ci"] == pytest.approx(1.43, abs=0.01)
    # HR 0.56 (0.46–0.69), common outcome -> 2.35, CI limit 1.91
    h = evalue(0.56, lower=0.46, upper=0.69, measure="HR", rare=False)
    assert h["evalue"] == pytest.approx(2.35, abs=0.01)
    assert h["evalue_ci"] == pytest.approx(1.91, abs=0.01)
