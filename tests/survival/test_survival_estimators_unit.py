"""Small hand-computed and brute-force checks of KM, RMST, log-rank, Aalen-Johansen, cox.zph."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.survival import (
    cumulative_incidence,
    expected_time_in_states,
    fit_cox,
    kaplan_meier,
    logrank_test,
    median_survival,
    ph_test,
    rmst,
    survival_at,
)

# six people; a death and a censoring tie at t = 2
TIME = np.array([1, 2, 2, 3, 4, 5], dtype=float)
EVENT = np.array([1, 1, 0, 1, 0, 1])


def test_km_hand_computed():
    km = kaplan_meier(TIME, EVENT)
    assert km["time"].tolist() == [0, 1, 2, 3, 4, 5]
    assert km["n_risk"].tolist() == [6, 6, 5, 3, 2, 1]
    assert km["n_event"].tolist() == [0, 1, 1, 1, 0, 1]
    assert km["n_censor"].tolist() == [0, 0, 1, 0, 1, 0]
    # S = 5/6, 5/6 * 4/5 (the censored tie is still at risk at t=2), * 2/3, unchanged, 0
    np.testing.assert_allclose(km["surv"], [1, 5 / 6, 2 / 3, 4 / 9, 4 / 9, 0])
    # Greenwood at t=3: var(log S) = 1/(6*5) + 1/(5*4) + 1/(3*2) = 1/4
    assert km.loc[3, "std_err"] == pytest.approx(4 / 9 * 0.5)
    # log-log band at t=3: S^exp(+-1.96 * 0.5 / log S)
    s, z = 4 / 9, stats.norm.ppf(0.975)
    lower, upper = s ** np.exp(-z * 0.5 / np.log(s)), s ** np.exp(z * 0.5 / np.log(s))
    assert km.loc[3, "lower"] == pytest.approx(lower)
    assert km.loc[3, "upper"] == pytest.approx(upper)
    assert (lower, upper) == pytest.approx((0.0662, 0.7850), abs=1e-4)  # worked by hand
    assert np.isnan(km.loc[5, "lower"])  # S = 0: no log-log band, as R


def test_km_step_evaluation_and_median():
    km = kaplan_meier(TIME, EVENT)
    assert survival_at(km, 0.5)[0] == 1.0
    assert survival_at(km, 2.0)[0] == pytest.approx(2 / 3)  # right-continuous
    assert survival_at(km, 2.999)[0] == pytest.approx(2 / 3)
    assert np.isnan(survival_at(km, 6.0)[0])
    med, _, _ = median_survival(km)
    assert med == 3.0
    # curve exactly 0.5 on [2, 3): R takes the midpoint of 2 and the next time (3)
    med, _, _ = median_survival(kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]))
    assert med == 2.5


def test_km_conf_types_and_weights():
    plain = kaplan_meier(TIME, EVENT, conf_type="plain")
    z = stats.norm.ppf(0.975)
    assert plain.loc[3, "upper"] == pytest.approx(4 / 9 + z * 4 / 9 * 0.5)
    log = kaplan_meier(TIME, EVENT, conf_type="log", conf_level=0.9)
    assert log.loc[3, "lower"] == pytest.approx(4 / 9 * np.exp(-stats.norm.ppf(0.95) * 0.5))
    with pytest.raises(ValueError):
        kaplan_meier(TIME, EVENT, conf_type="logit")
    # weight 2 on a row == duplicating it
    w = np.array([1, 2, 1, 1, 1, 1.0])
    wkm = kaplan_meier(TIME, EVENT, weights=w)
    dup = kaplan_meier(np.r_[TIME, 2.0], np.r_[EVENT, 1])
    np.testing.assert_allclose(wkm["surv"], dup["surv"])
    np.testing.assert_allclose(wkm["n_risk"], dup["n_risk"])


def test_rmst_hand_computed():
    est, se = rmst(TIME, EVENT, tau=4)
    # area: 1 + 5/6 + 2/3 + 4/9 over unit intervals
    assert est == pytest.approx(float(1 + F(5, 6) + F(2, 3) + F(4, 9)))
    # var = sum A_j^2 d_j / (n_j (n_j - d_j)); A_j = area from t_j to tau
    a1, a2, a3 = F(5, 6) + F(2, 3) + F(4, 9), F(2, 3) + F(4, 9), F(4, 9)
    var = a1**2 / 30 + a2**2 / 20 + a3**2 / 6
    assert se == pytest.approx(float(var) ** 0.5)
    # tau between event times, and past the last time (curve carried flat, as R)
    assert rmst(TIME, EVENT, tau=2.5)[0] == pytest.approx(1 + 5 / 6 + 0.5 * 2 / 3)
    assert rmst(TIME, EVENT, tau=7)[0] == pytest.approx(float(1 + F(5, 6) + F(2, 3) + 2 * F(4, 9)))


def test_logrank_matches_lifelines_two_and_three_groups():
    lifelines_stats = pytest.importorskip("lifelines.statistics")
    rng = np.random.default_rng(5)
    n = 300
    g = rng.integers(0, 3, n)
    t = rng.integers(1, 30, n).astype(float) * (1 + 0.3 * g)  # ties + a real difference
    e = (rng.random(n) < 0.8).astype(int)
    res3 = logrank_test(t, e, g)
    ref3 = lifelines_stats.multivariate_logrank_test(t, g, e)
    assert res3.df == 2
    assert res3.chi2 == pytest.approx(ref3.test_statistic, rel=1e-8)
    two = g < 2
    res2 = logrank_test(t[two], e[two], g[two])
    ref2 = lifelines_stats.logrank_test(
        t[two & (g == 0)], t[two & (g == 1)], e[two & (g == 0)], e[two & (g == 1)]
    )
    assert res2.chi2 == pytest.approx(ref2.test_statistic, rel=1e-8)
    assert res2.p == pytest.approx(ref2.p_value, rel=1e-6)
    assert res3.observed.sum() == pytest.approx(res3.expected.sum())


def test_cumulative_incidence_hand_computed_with_tied_causes():
    # t=2 has one event of each cause: exact AJ handles the tie without jitter
    t = np.array([1, 2, 2, 3, 4.0])
    status = np.array([1, 2, 1, 0, 1])
    c1 = cumulative_incidence(t, status, cause=1)
    c2 = cumulative_incidence(t, status, cause=2)
    np.testing.assert_allclose(c1["cif"], [0, 0.2, 0.4, 0.4, 0.8])
    np.testing.assert_allclose(c2["cif"], [0, 0, 0.2, 0.2, 0.2])
    states = expected_time_in_states(t, status, tau=4)
    # event-free: 1 on [0,1), 0.8 on [1,2), 0.4 on [2,4)
    assert states[0] == pytest.approx(1 + 0.8 + 2 * 0.4)
    assert states[1] == pytest.approx(0.2 + 2 * 0.4)
    assert states[2] == pytest.approx(2 * 0.2)


def test_cumulative_incidence_single_cause_is_one_minus_km():
    ci = cumulative_incidence(TIME, EVENT, cause=1)
    km = kaplan_meier(TIME, EVENT)
    np.testing.assert_allclose(ci["cif"], 1 - km["surv"])


def test_cumulative_incidence_se_is_infinitesimal_jackknife():
    # R's multi-state survfit SE = sqrt(sum_i U_i^2), U_i = dF/dw_i (infinitesimal jackknife);
    # check the O(n) closed form against numerical derivatives w.r.t. each case weight
    rng = np.random.default_rng(9)
    n = 40
    t = rng.integers(1, 12, n).astype(float)
    status = rng.choice([0, 1, 2], size=n, p=[0.3, 0.4, 0.3])
    w = rng.uniform(0.5, 2.0, n)
    base = cumulative_incidence(t, status, cause=1, weights=w)
    h = 1e-6
    infl = np.empty((n, len(base)))
    for i in range(n):
        up, down = w.copy(), w.copy()
        up[i] += h
        down[i] -= h
        infl[i] = (
            cumulative_incidence(t, status, 1, weights=up)["cif"]
            - cumulative_incidence(t, status, 1, weights=down)["cif"]
        ) / (2 * h)
    ij_se = np.sqrt(((w[:, None] * infl) ** 2).sum(0))
    np.testing.assert_allclose(base["std_err"], ij_se, rtol=1e-5, atol=1e-9)
    # log-scale band, R's multi-state default
    row = base.iloc[5]
    z = stats.norm.ppf(0.975)
    assert row["lower"] == pytest.approx(row["cif"] * np.exp(-z * row["std_err"] / row["cif"]))


def _zph_slow(fit, gt_row):
    """cox.zph score test by explicit loops (zph1.c structure), any strata and weights."""
    d = fit.data
    x = d.xt.T
    eta = x @ fit.coef.to_numpy()
    r = np.exp(eta) * d.weight
    p = x.shape[1]
    u = np.zeros(2 * p)
    imat = np.zeros((2 * p, 2 * p))
    for st in np.unique(d.stratum):
        ins = d.stratum == st
        for tj in np.unique(d.time[ins & (d.event == 1)]):
            risk = ins & (d.time >= tj)
            dead = ins & (d.time == tj) & (d.event == 1)
            nd = dead.sum()
            g = gt_row[dead][0]
            wtave = d.weight[dead].sum() / nd
            u[:p] += (d.weight[dead, None] * x[dead]).sum(0)
            u[p:] += g * (d.weight[dead, None] * x[dead]).sum(0)
            for k in range(nd):
                f = k / nd
                wts = r * (risk & ~dead) + r * dead * (1 - f)
                mean = (wts[:, None] * x).sum(0) / wts.sum()
                cov = (wts[:, None] * x).T @ x / wts.sum() - np.outer(mean, mean)
                u[:p] -= wtave * mean
                u[p:] -= g * wtave * mean
                block = wtave * cov
                imat[:p, :p] += block
                imat[:p, p:] += g * block
                imat[p:, p:] += g * g * block
    imat[p:, :p] = imat[:p, p:].T
    u[:p] = 0.0
    out = []
    for k in range(p):
        idx = np.r_[np.arange(p), p + k]
        out.append(u[idx] @ np.linalg.solve(imat[np.ix_(idx, idx)], u[idx]))
    out.append(u @ np.linalg.solve(imat, u))
    return np.array(out)


@pytest.mark.parametrize("transform", ["km", "identity"])
def test_ph_test_matches_loop_implementation_with_strata_and_weights(transform):
    rng = np.random.default_rng(21)
    n = 120
    df = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    df["t"] = rng.integers(1, 15, n).astype(float)
    df["e"] = (rng.random(n) < 0.75).astype(int)
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["s"] = rng.integers(0, 2, n)
    fit = fit_cox(df, "t", "e", ["a", "b"], strata="s", weights_col="w")
    got = ph_test(fit, transform=transform)
    d = fit.data
    if transform == "km":  # 1 - left-continuous, pooled, unweighted KM
        km = kaplan_meier(d.time, d.event)
        idx = np.searchsorted(km["time"].to_numpy(), d.time, side="left") - 1
        gt = 1 - km["surv"].to_numpy()[idx]
    else:
        gt = d.time.copy()
    gt = gt - gt[d.event == 1].mean()
    np.testing.assert_allclose(got["chisq"].to_numpy(), _zph_slow(fit, gt), rtol=1e-8)
    assert got.index[-1] == "GLOBAL"
