"""Cox machinery against slow, direct implementations (R's coxscore2 loop, Efron likelihood).

The data sets are small and heavily tied so that the Efron corrections matter.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pipeline.survival import concordance_index, fit_cox
from pipeline.survival.cox_core import efron_terms, information, prepare, score_residuals


def _tied_data(n: int = 60, p: int = 3, seed: int = 0, strata: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    t = rng.integers(1, 8, size=n).astype(float)  # only 7 distinct times: many ties
    e = (rng.random(n) < 0.7).astype(float)
    df = pd.DataFrame(x, columns=[f"x{k}" for k in range(p)])
    df["t"], df["e"] = t, e
    df["w"] = rng.integers(1, 4, size=n).astype(float)
    df["s"] = rng.integers(0, strata, size=n)
    df["cl"] = rng.integers(0, n // 4, size=n)
    return df


def _efron_loglik_slow(x, t, e, w, s, beta):
    """Efron log partial likelihood by explicit loops over strata and event times."""
    eta = x @ beta
    r = np.exp(eta)
    ll = 0.0
    for st in np.unique(s):
        ins = s == st
        for tj in np.unique(t[ins & (e == 1)]):
            risk = ins & (t >= tj)
            dead = ins & (t == tj) & (e == 1)
            d = dead.sum()
            meanwt = w[dead].sum() / d
            ll += (w[dead] * eta[dead]).sum()
            for k in range(d):
                ll -= meanwt * np.log((w[risk] * r[risk]).sum() - k / d * (w[dead] * r[dead]).sum())
    return ll


def _coxscore2_slow(x, t, e, s, w, beta):
    """Direct port of R survival's coxscore2.c (Efron, case weights), O(n^2), row order."""
    n, p = x.shape
    r = np.exp(x @ beta)
    wr = w * r
    resid = np.zeros((n, p))
    for st in np.unique(s):
        idx = np.flatnonzero(s == st)
        for tj in np.unique(t[idx][e[idx] == 1]):
            risk = idx[t[idx] >= tj]
            dead = idx[(t[idx] == tj) & (e[idx] == 1)]
            d = dead.size
            denom = wr[risk].sum()
            e_denom = wr[dead].sum()
            meanwt = w[dead].sum() / d
            a = (wr[risk, None] * x[risk]).sum(0)
            a2 = (wr[dead, None] * x[dead]).sum(0)
            for dd in range(d):
                f = dd / d
                temp = denom - f * e_denom
                hazard = meanwt / temp
                mean = (a - f * a2) / temp
                for k in risk:
                    diff = x[k] - mean
                    if k in dead:
                        resid[k] += diff / d - diff * r[k] * hazard * (1 - f)
                    else:
                        resid[k] -= diff * r[k] * hazard
    return resid


def _sorted_to_original(data, arr_pn):
    out = np.empty_like(arr_pn.T)
    out[data.order] = arr_pn.T
    return out


@pytest.mark.parametrize("n_strata", [1, 3])
def test_loglik_score_information_match_direct_computation(n_strata):
    df = _tied_data(strata=n_strata)
    x = df[["x0", "x1", "x2"]].to_numpy()
    t, e, w, s = df["t"].to_numpy(), df["e"].to_numpy(), df["w"].to_numpy(), df["s"].to_numpy()
    data = prepare(x, t, e, w, s)
    beta = np.array([0.3, -0.2, 0.1])
    terms = efron_terms(data, beta)
    assert terms.loglik == pytest.approx(_efron_loglik_slow(x, t, e, w, s, beta), rel=1e-12)
    # score = gradient, information = -Hessian (central differences)
    h = 1e-5
    eye = np.eye(3)
    grad = [
        (
            _efron_loglik_slow(x, t, e, w, s, beta + h * eye[k])
            - _efron_loglik_slow(x, t, e, w, s, beta - h * eye[k])
        )
        / (2 * h)
        for k in range(3)
    ]
    np.testing.assert_allclose(terms.score, grad, rtol=1e-6, atol=1e-7)
    hess = np.array(
        [
            (
                efron_terms(data, beta + h * eye[k]).score
                - efron_terms(data, beta - h * eye[k]).score
            )
            / (2 * h)
            for k in range(3)
        ]
    )
    np.testing.assert_allclose(information(data, terms), -hess, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_strata", [1, 3])
def test_score_residuals_match_r_coxscore2(n_strata, weighted):
    df = _tied_data(strata=n_strata, seed=3)
    x = df[["x0", "x1", "x2"]].to_numpy()
    t, e, s = df["t"].to_numpy(), df["e"].to_numpy(), df["s"].to_numpy()
    w = df["w"].to_numpy() if weighted else np.ones(len(df))
    data = prepare(x, t, e, w, s)
    beta = np.array([0.4, 0.1, -0.3])
    fast = _sorted_to_original(data, score_residuals(data, efron_terms(data, beta)))
    slow = _coxscore2_slow(x, t, e, s, w, beta)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)
    # weighted residuals sum to the score vector
    np.testing.assert_allclose(
        (w[:, None] * fast).sum(0), efron_terms(data, beta).score, atol=1e-10
    )


def test_breslow_residuals_sum_to_breslow_score():
    df = _tied_data(seed=5)
    x = df[["x0", "x1", "x2"]].to_numpy()
    data = prepare(
        x,
        df["t"].to_numpy(),
        df["e"].to_numpy(),
        np.ones(len(df)),
        np.zeros(len(df), dtype=np.int64),
        ties="breslow",
    )
    beta = np.array([0.2, 0.2, 0.2])
    terms = efron_terms(data, beta)
    np.testing.assert_allclose(score_residuals(data, terms).sum(1), terms.score, atol=1e-10)
    efron = fit_cox(df, "t", "e", ["x0", "x1", "x2"])
    breslow = fit_cox(df, "t", "e", ["x0", "x1", "x2"], ties="breslow")
    assert not np.allclose(efron.coef, breslow.coef, atol=1e-4)  # ties do matter here


def test_integer_weights_equal_replicated_rows():
    # exact for Breslow ties; with Efron, R (and we) use the number of tied rows, so a
    # frequency weight is not the same as replicated rows
    df = _tied_data(seed=7)
    cov = ["x0", "x1", "x2"]
    rep = df.loc[df.index.repeat(df["w"].astype(int))].reset_index(names="orig")
    weighted = fit_cox(df, "t", "e", cov, weights_col="w", robust=True, ties="breslow")
    replicated = fit_cox(rep, "t", "e", cov, cluster_col="orig", ties="breslow")
    np.testing.assert_allclose(weighted.coef, replicated.coef, rtol=1e-8)
    np.testing.assert_allclose(weighted.summary["se"], replicated.summary["se"], rtol=1e-8)
    # sandwich of the weighted fit == replicated rows clustered on the original row
    np.testing.assert_allclose(
        weighted.summary["robust_se"], replicated.summary["robust_se"], rtol=1e-8
    )
    assert weighted.loglik == pytest.approx(replicated.loglik, rel=1e-10)


def test_cluster_each_own_equals_robust_and_real_clusters_differ():
    df = _tied_data(n=200, seed=11)
    cov = ["x0", "x1", "x2"]
    robust = fit_cox(df, "t", "e", cov, robust=True)
    own = fit_cox(df.assign(pid=np.arange(len(df))), "t", "e", cov, cluster_col="pid")
    np.testing.assert_allclose(own.summary["robust_se"], robust.summary["robust_se"], rtol=1e-12)
    grouped = fit_cox(df, "t", "e", cov, cluster_col="cl")
    assert not np.allclose(grouped.summary["robust_se"], robust.summary["robust_se"], rtol=1e-3)
    # naive SEs and point estimates do not depend on the variance choice
    np.testing.assert_allclose(grouped.summary["se"], robust.summary["se"])
    np.testing.assert_allclose(grouped.coef, robust.coef)


def test_stratified_fit_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    df = _tied_data(n=300, seed=13, strata=3)
    cov = ["x0", "x1", "x2"]
    ours = fit_cox(df, "t", "e", cov, strata="s")
    cph = lifelines.CoxPHFitter().fit(df[[*cov, "t", "e", "s"]], "t", "e", strata=["s"])
    np.testing.assert_allclose(ours.coef, cph.params_[cov], atol=1e-6)
    np.testing.assert_allclose(ours.summary["se"], cph.standard_errors_[cov], rtol=1e-5)
    assert ours.loglik == pytest.approx(cph.log_likelihood_, rel=1e-8)


def _concordance_slow(t, e, x, s, w):
    conc = disc = tied = 0.0
    for i in range(t.size):
        if not e[i]:
            continue
        for j in range(t.size):
            if s[j] != s[i] or j == i:
                continue
            if t[j] > t[i] or (t[j] == t[i] and not e[j]):
                pair = w[i] * w[j]
                if x[i] > x[j]:
                    conc += pair
                elif x[i] < x[j]:
                    disc += pair
                else:
                    tied += pair
    return (conc + tied / 2) / (conc + disc + tied)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_strata", [1, 2])
def test_concordance_matches_pairwise_count(weighted, n_strata):
    rng = np.random.default_rng(17)
    n = 157
    t = rng.integers(0, 20, n).astype(float)
    e = rng.random(n) < 0.6
    x = rng.integers(0, 6, n).astype(float)  # tied risk scores too
    s = rng.integers(0, n_strata, n)
    w = rng.uniform(0.5, 2, n) if weighted else np.ones(n)
    got, _ = concordance_index(t, e, x, strata=s, weights=w if weighted else None)
    assert got == pytest.approx(_concordance_slow(t, e, x, s, w), rel=1e-12)


def test_cox_recovers_simulated_coefficients_and_is_fast():
    # speed requirement: robust SEs on 20,000 rows with continuous times well under 5 s
    rng = np.random.default_rng(2024)
    n, beta = 20_000, np.array([0.5, -0.5, 0.25, 0.0, 1.0])
    x = rng.normal(size=(n, beta.size))
    true_t = rng.exponential(1 / np.exp(x @ beta))
    cens = rng.exponential(2.0, n)
    df = pd.DataFrame(x, columns=[f"x{k}" for k in range(beta.size)])
    df["t"], df["e"] = np.minimum(true_t, cens), (true_t <= cens).astype(int)
    start = time.perf_counter()
    fit = fit_cox(df, "t", "e", list(df.columns[:5]), robust=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    assert fit.converged
    np.testing.assert_allclose(fit.coef, beta, atol=0.05)
    # correctly specified model: sandwich and model-based SEs agree closely
    np.testing.assert_allclose(fit.summary["robust_se"], fit.summary["se"], rtol=0.1)
    assert 0.6 < fit.concordance < 0.9
