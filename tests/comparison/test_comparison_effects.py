"""Effect measures, E-value edge cases, power, and the weighted KM bootstrap."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from pipeline.comparison import (
    evalue,
    ipw_ate,
    minimum_detectable_hr,
    natural_frequencies,
    risk_difference_ratio,
    weighted_km_at,
    weighted_km_bootstrap,
)


@pytest.fixture(scope="module")
def binary_data():
    rng = np.random.default_rng(3)
    n = 600
    t = (rng.random(n) < 0.4).astype(int)
    y = (rng.random(n) < np.where(t == 1, 0.25, 0.4)).astype(float)
    w = rng.uniform(0.3, 3.0, n)
    return y, t, w


def test_risk_difference_matches_wls_hc0(binary_data):
    y, t, w = binary_data
    out = risk_difference_ratio(y, t, w)
    p1 = np.sum(w * y * t) / np.sum(w * t)
    p0 = np.sum(w * y * (1 - t)) / np.sum(w * (1 - t))
    assert out["risk_treated"] == pytest.approx(p1)
    assert out["rd"].estimate == pytest.approx(p1 - p0)
    ref = sm.WLS(y, sm.add_constant(t.astype(float)), weights=w).fit(cov_type="HC0")
    assert out["rd"].se == pytest.approx(ref.bse[1], rel=1e-10)
    assert out["rr"].estimate == pytest.approx(p1 / p0)
    # Delta method on log RR: var(p1)/p1^2 + var(p0)/p0^2 (independent groups).
    v1 = np.sum((w * t * (y - p1)) ** 2) / np.sum(w * t) ** 2
    v0 = np.sum((w * (1 - t) * (y - p0)) ** 2) / np.sum(w * (1 - t)) ** 2
    assert out["rr"].se == pytest.approx(np.sqrt(v1 / p1**2 + v0 / p0**2))
    z = stats.norm.ppf(0.975)
    assert out["rr"].ci_low == pytest.approx(p1 / p0 * np.exp(-z * out["rr"].se))
    assert out["rd"].p_value == pytest.approx(2 * stats.norm.sf(abs(p1 - p0) / out["rd"].se))


def test_cluster_se_counts_a_duplicated_person_once(binary_data):
    # Each row twice, clustered by person, must give the SE of the original data.
    y, t, w = binary_data
    ids = np.arange(len(y))
    y2, t2, w2, id2 = (np.r_[a, a] for a in (y, t, w, ids))
    base = risk_difference_ratio(y, t, w)
    dup = risk_difference_ratio(y2, t2, w2, cluster=id2)
    naive = risk_difference_ratio(y2, t2, w2)
    assert dup["rd"].se == pytest.approx(base["rd"].se)
    assert dup["rr"].se == pytest.approx(base["rr"].se)
    assert naive["rd"].se == pytest.approx(base["rd"].se / np.sqrt(2))
    c_base = ipw_ate(y, t, w)
    c_dup = ipw_ate(y2, t2, w2, cluster=id2)
    assert c_dup.se == pytest.approx(c_base.se, rel=1e-8)


def test_ipw_ate_zero_weights_are_dropped(binary_data):
    y, t, w = binary_data
    w0 = w.copy()
    w0[:50] = 0.0
    a = ipw_ate(y, t, w0)
    b = ipw_ate(y[50:], t[50:], w[50:])
    assert a.estimate == pytest.approx(b.estimate) and a.se == pytest.approx(b.se)
    assert a.n == len(y) - 50


def test_evalue_edge_cases():
    assert evalue(1.3, lower=0.9, upper=1.8)["evalue_ci"] == 1.0  # CI includes 1
    assert evalue(0.7, lower=0.5, upper=1.1)["evalue_ci"] == 1.0
    # Rare outcome: HR used as RR; common outcome OR -> sqrt(OR).
    assert evalue(0.56, measure="HR", rare=True)["evalue"] == pytest.approx(evalue(0.56)["evalue"])
    assert evalue(4.0, measure="OR", rare=False)["rr"] == pytest.approx(2.0)
    assert evalue(2.0)["evalue"] == pytest.approx(2 + np.sqrt(2))
    with pytest.raises(ValueError):
        evalue(-1.0)


def test_natural_frequencies():
    nf = natural_frequencies(0.12, 0.18, per=100)
    assert nf["treated_rounded"] == 12 and nf["control_rounded"] == 18
    assert nf["difference"] == pytest.approx(-6.0)
    assert nf["direction"] == "fewer"
    assert nf["nnt"] == pytest.approx(1 / 0.06)
    assert "12" in nf["sentence"] and "18" in nf["sentence"]


def test_minimum_detectable_hr_schoenfeld():
    # Classic figure: 1:1 allocation, alpha 0.05, 80% power, HR 0.7 needs ~247 events.
    hr = minimum_detectable_hr(500, 500, 247 / 1000)
    assert hr == pytest.approx(0.70, abs=0.002)
    # Unequal allocation needs more events for the same HR: the detectable HR moves from 1.
    assert minimum_detectable_hr(200, 800, 0.247) < hr
    assert minimum_detectable_hr(500, 500, 0.5) > hr  # more events, smaller effect


@pytest.mark.filterwarnings("ignore::lifelines.exceptions.StatisticalWarning")
def test_weighted_km_at_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    rossi = lifelines.datasets.load_rossi()
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, len(rossi))
    times = [0.5, 10, 20.5, 52, 60]
    kmf = lifelines.KaplanMeierFitter().fit(rossi["week"], rossi["arrest"], weights=w)
    ref = kmf.survival_function_at_times(times).to_numpy()
    np.testing.assert_allclose(weighted_km_at(rossi["week"], rossi["arrest"], times, w), ref)
    # REFERENCE_RESULTS Rossi: KM at week 52, all 0.73611 (1e-5)
    s52 = weighted_km_at(rossi["week"], rossi["arrest"], [52])[0]
    assert s52 == pytest.approx(0.73611, abs=1e-5)


def _simulated_cohort(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(35, 10, n)
    site = rng.choice(["a", "b", "c"], n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.05 * (age - 35))))).astype(int)
    rate = 0.02 * np.exp(0.03 * (age - 35) - 0.3 * t)
    ev_time = rng.exponential(1 / rate)
    cens = rng.uniform(10, 60, n)
    return pd.DataFrame(
        {
            "age": age,
            "site": site,
            "t": t,
            "time": np.round(np.minimum(ev_time, cens), 1),
            "event": (ev_time <= cens).astype(int),
        }
    )


def test_bootstrap_fast_and_deterministic():
    df = _simulated_cohort(2000, 1)
    start = time.perf_counter()
    a = weighted_km_bootstrap(
        df,
        "time",
        "event",
        "t",
        ["age", "site"],
        [12, 24, 36],
        n_boot=200,
        estimand="ATT",
        seed=7,
        categorical=["site"],
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 10  # "200 resamples of 2,000 people in a few seconds"
    b = weighted_km_bootstrap(
        df,
        "time",
        "event",
        "t",
        ["age", "site"],
        [12, 24, 36],
        n_boot=200,
        estimand="ATT",
        seed=7,
        categorical=["site"],
    )
    pd.testing.assert_frame_equal(a, b)
    assert (a["se_diff"] > 0).all()
    assert (a["ci_low_diff"] < a["diff"]).all() and (a["diff"] < a["ci_high_diff"]).all()
    np.testing.assert_allclose(a["diff"], a["surv_treated"] - a["surv_control"])
    # ATT: the treated curve is the unweighted KM of the treated.
    m = df["t"] == 1
    np.testing.assert_allclose(
        a["surv_treated"], weighted_km_at(df.loc[m, "time"], df.loc[m, "event"], [12, 24, 36])
    )
    assert np.isfinite(a[["se_treated", "se_control", "se_diff"]].to_numpy()).all()


def test_bootstrap_resample_equals_manual_refit():
    # One resample by frequency weights == fitting on the physically resampled rows.
    from pipeline.comparison import fit_propensity, ipw_weights

    df = _simulated_cohort(400, 2)
    n_boot = 1
    res = weighted_km_bootstrap(
        df, "time", "event", "t", ["age"], [20], n_boot=n_boot, estimand="ATE", seed=11
    )
    # Reproduce the first resample of seed 11 (np.random.default_rng(11).integers(0, n, n)
    # on rows sorted by time, stable).
    srt = df.sort_values("time", kind="stable").reset_index(drop=True)
    idx = np.random.default_rng(11).integers(0, len(srt), len(srt))
    boot = srt.iloc[idx].reset_index(drop=True)
    m = fit_propensity(boot, "t", ["age"])
    w = ipw_weights(m.scores, boot["t"], "ATE", stabilized=True)
    q = boot["t"] == 1
    s1 = weighted_km_at(boot.loc[q, "time"], boot.loc[q, "event"], [20], w[q])[0]
    s0 = weighted_km_at(boot.loc[~q, "time"], boot.loc[~q, "event"], [20], w[~q])[0]
    # With one resample the percentile "CI" collapses onto the resample's value.
    assert res["ci_low_treated"].iloc[0] == pytest.approx(s1, abs=1e-9)
    assert res["ci_low_control"].iloc[0] == pytest.approx(s0, abs=1e-9)
    assert res["ci_low_diff"].iloc[0] == pytest.approx(s1 - s0, abs=1e-9)
