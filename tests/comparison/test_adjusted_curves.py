"""Doubly robust (AIPTW-AIPCW) adjusted survival curves: identities, double robustness,
coverage, published values (Rossi, NHEFS) and the not-estimable cases.

Set AIPW_HEAVY=1 for the 500-replicate coverage study and the cluster bootstrap of the SE.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pandas as pd
import pytest

from pipeline.comparison.adjusted_curves import _arm_terms, _weighted_km, aipw_survival
from pipeline.comparison.aipw_models import cox_breslow, fit_hazard
from pipeline.comparison.propensity import fit_propensity
from pipeline.survival import fit_cox

from .conftest import NHEFS_CATEGORICAL, NHEFS_COVARIATES, NHEFS_SQUARES

HEAVY = os.environ.get("AIPW_HEAVY") == "1"
Z = 1.959964


def _lin_ps(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(-0.3 + 1.0 * x1 - 0.5 * x2)))


def simulate(n: int, seed: int, censor: bool = True, step: float = 0.25) -> pd.DataFrame:
    """Confounded data, Cox model per arm in (x1, x2); censoring depends on x1 and x2.

    Times in months rounded up to `step` (ties, as in weekly or monthly follow-up);
    administrative end of follow-up at 36 months.
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.5, n).astype(float)
    a = rng.binomial(1, _lin_ps(x1, x2)).astype(float)
    t = rng.exponential(1.0 / (0.03 * np.exp(0.8 * x1 + 0.6 * x2 - 0.4 * a)))
    c = np.full(n, np.inf)
    if censor:
        c = np.minimum(rng.exponential(1.0 / (0.015 * np.exp(0.3 * x1 + 0.5 * x2))), 36.0)
    time = np.ceil(np.minimum(t, c) / step) * step
    return pd.DataFrame({"time": time, "event": (t <= c).astype(float), "a": a, "x1": x1,
                         "x2": x2})


@functools.lru_cache
def truth(t: float, estimand: str) -> dict[int, float]:
    """E[S_a(t | X)] in the target population, by Monte Carlo over 2 million X draws."""
    rng = np.random.default_rng(99)
    x1 = rng.normal(size=2_000_000)
    x2 = rng.binomial(1, 0.5, x1.size)
    w = _lin_ps(x1, x2) if estimand == "ATT" else np.ones(x1.size)
    return {arm: float(np.average(np.exp(-0.03 * t * np.exp(0.8 * x1 + 0.6 * x2 - 0.4 * arm)),
                                  weights=w)) for arm in (1, 0)}


def _surv(res, col: str = "survival") -> dict[tuple[int, float], float]:
    return {(int(r.arm), float(r.time)): float(getattr(r, col))
            for r in res.survival.itertuples()}


# ------------------------------------------------------------------ working models


def test_cox_breslow_matches_project_cox_on_rossi():
    from lifelines.datasets import load_rossi

    r = load_rossi()
    cov = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(r))
    r["w"] = w
    mine, se = cox_breslow(r[cov].to_numpy(float), r["week"].to_numpy(float),
                           r["arrest"].to_numpy(float), w, with_se=True)
    ref = fit_cox(r, "week", "arrest", cov, ties="breslow", weights_col="w")
    np.testing.assert_allclose(mine, ref.coef.to_numpy(), atol=1e-10)
    # the information matrix (a weighted Gram matrix, not the risk-set sums of fit_cox)
    np.testing.assert_allclose(se, ref.summary["se"].to_numpy(), rtol=1e-8)


def test_cox_breslow_leaving_rows_are_rows_censored_just_before():
    """A row that leaves the risk set at its own time (``leave``) is a row censored just
    before it: coefficients and standard errors (the information) must agree."""
    rng = np.random.default_rng(4)
    n = 800
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n), rng.normal(size=n)])
    time = rng.integers(1, 40, n).astype(float)  # many ties
    event = (rng.random(n) < 0.5).astype(float)
    leave = (1 - event) * (rng.random(n) < 0.4)
    w = rng.uniform(0.3, 2.0, n)
    b1, se1 = cox_breslow(x, time, event, w, leave, with_se=True)
    b2, se2 = cox_breslow(x, time - 0.5 * leave, event, w, with_se=True)
    np.testing.assert_allclose(b1, b2, atol=1e-10)
    np.testing.assert_allclose(se1, se2, rtol=1e-10)


# ------------------------------------------------------------------ identities


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_constant_ps_no_censoring_matches_gformula(estimand):
    d = simulate(4000, 7, censor=False)
    d["pc"] = 0.3
    res = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [6, 12, 24], estimand, ps="pc")
    # no exact identity: the Cox model's arm residuals need not average to 0 (measured
    # max 0.0022 here), against a standard error of about 0.01
    gap = (res.survival["survival"] - res.survival["gformula"]).abs().max()
    assert gap < 0.005
    assert res.survival["se"].min() > 0.005


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_empty_models_and_constant_ps_give_kaplan_meier_exactly(estimand):
    # tied event and censoring times: exact only with events-before-censorings in G
    d = simulate(3000, 8)
    d["pc"] = 0.3
    res = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [6, 12, 24], estimand, ps="pc",
                        outcome_covariates=[], censoring_covariates=[])
    for arm in (1, 0):
        sub = d[d["a"] == arm]
        km = _weighted_km(sub["time"].to_numpy(), sub["event"].to_numpy(),
                          np.ones(len(sub)), np.array([6.0, 12.0, 24.0]))
        got = res.survival.loc[res.survival["arm"] == arm, "survival"].to_numpy()
        np.testing.assert_allclose(got, km, atol=1e-12)


def test_without_outcome_model_the_estimator_is_ipw_kaplan_meier():
    # F = 0 (no outcome model) leaves IPTW-IPCW; with the censoring Kaplan-Meier in the
    # IP-weighted arm, that is the IP-weighted Kaplan-Meier exactly (ties included)
    d = simulate(2000, 3)
    ps = _lin_ps(d["x1"].to_numpy(), d["x2"].to_numpy())
    a, time, event = d["a"].to_numpy(), d["time"].to_numpy(), d["event"].to_numpy()
    b = np.random.default_rng(1).uniform(0.5, 2.0, len(d))
    h = a / ps
    h *= b.sum() / (b * h).sum()
    rows = np.flatnonzero(a == 1)
    sub = d.iloc[rows]
    zero = fit_hazard(sub, d, time[rows], event[rows], b[rows], [], "none")
    zero.dlam[:] = 0.0
    zero.__post_init__()
    cens = fit_hazard(sub, sub, time[rows], 1.0 - event[rows], (b * h)[rows], [], "c",
                      leave=event[rows])
    grid = np.array([3.0, 12.0, 24.0])
    fit = _arm_terms(rows, time, event, np.ones(len(d)), h, b, zero, cens, grid,
                     np.ones(3, bool), np.zeros(3))
    km = _weighted_km(time[rows], event[rows], (b * h)[rows], grid)
    np.testing.assert_allclose(1.0 - fit.risk, km, atol=1e-12)


def test_empty_outcome_model_is_close_to_ipw_km_under_censoring():
    d = simulate(4000, 8)
    res = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [6, 12, 24], "ATE",
                        outcome_covariates=[], censoring_covariates=[])
    # measured max 0.003: both estimate the same curve, by different weightings
    assert (res.survival["survival"] - res.survival["ipw_km"]).abs().max() < 0.01


# ------------------------------------------------------------------ double robustness


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_double_robustness(estimand):
    tr = truth(24.0, estimand)
    d = simulate(4000, 11)
    # outcome model wrong (x1, a confounder, left out), propensity right
    bad_outcome = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [24], estimand,
                                outcome_covariates=["x2"])
    # propensity wrong (x1 left out), outcome and censoring models right
    bad_ps = aipw_survival(d, "time", "event", "a", ["x2"], [24], estimand,
                           outcome_covariates=["x1", "x2"], censoring_covariates=["x1", "x2"])
    for arm in (1, 0):
        assert abs(_surv(bad_outcome)[(arm, 24.0)] - tr[arm]) < 0.02
        assert abs(_surv(bad_ps)[(arm, 24.0)] - tr[arm]) < 0.02
    # the single-robust estimators built from the wrong model are badly biased
    bias_g = max(abs(_surv(bad_outcome, "gformula")[(arm, 24.0)] - tr[arm]) for arm in (1, 0))
    bias_ipw = max(abs(_surv(bad_ps, "ipw_km")[(arm, 24.0)] - tr[arm]) for arm in (1, 0))
    assert bias_g > 0.05
    assert bias_ipw > 0.05


# ------------------------------------------------------------------ standard errors


def _coverage(reps: int, n: int, seed0: int) -> dict[str, float]:
    tr = truth(24.0, "ATE")
    rd_true = tr[0] - tr[1]
    hits = {"S1": 0, "S0": 0, "RD": 0}
    for rep in range(reps):
        res = aipw_survival(simulate(n, seed0 + rep, step=1.0), "time", "event", "a",
                            ["x1", "x2"], [24], "ATE")
        s = res.survival.set_index("arm")
        for key, arm in (("S1", 1), ("S0", 0)):
            hits[key] += abs(s.loc[arm, "survival"] - tr[arm]) <= Z * s.loc[arm, "se"]
        rd = res.risk_difference.iloc[0]
        hits["RD"] += abs(rd["estimate"] - rd_true) <= Z * rd["se"]
    return {k: v / reps for k, v in hits.items()}


def test_influence_function_ci_coverage_quick():
    # 100 replicates: a 95% coverage shows as 0.91-0.99 with probability ~0.95 or more
    cov = _coverage(100, 500, 5000)
    for key, value in cov.items():
        assert 0.88 <= value <= 1.0, (key, cov)


@pytest.mark.skipif(not HEAVY, reason="set AIPW_HEAVY=1 for the 500-replicate study")
def test_influence_function_ci_coverage_heavy():
    cov = _coverage(500, 1000, 20000)
    print("coverage (500 reps, n=1000):", cov)
    for value in cov.values():
        assert 0.93 <= value <= 0.975


def test_cluster_se_with_every_person_in_two_trials():
    # duplicating every row (a person in two sequential trials) leaves the estimate and the
    # cluster-robust SE unchanged; the row-level SE wrongly shrinks by sqrt(2)
    d = simulate(1500, 21)
    d["person"] = np.arange(len(d))
    one = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [12, 24], "ATE", tau=24)
    two = pd.concat([d, d], ignore_index=True)
    clu = aipw_survival(two, "time", "event", "a", ["x1", "x2"], [12, 24], "ATE", tau=24,
                        cluster_col="person")
    naive = aipw_survival(two, "time", "event", "a", ["x1", "x2"], [12, 24], "ATE", tau=24)
    np.testing.assert_allclose(clu.survival["survival"], one.survival["survival"], atol=1e-9)
    np.testing.assert_allclose(clu.survival["se"], one.survival["se"], rtol=1e-7)
    np.testing.assert_allclose(clu.risk_difference["se"], one.risk_difference["se"], rtol=1e-7)
    assert clu.rmst["se"].iloc[0] == pytest.approx(one.rmst["se"].iloc[0], rel=1e-7)
    np.testing.assert_allclose(naive.survival["se"] * np.sqrt(2), one.survival["se"],
                               rtol=1e-7)
    assert clu.n_clusters == 1500


@pytest.mark.skipif(not HEAVY, reason="set AIPW_HEAVY=1 for the cluster bootstrap")
def test_cluster_se_matches_cluster_bootstrap():
    # people in 1-3 overlapping trials with a shared frailty; resample people
    rng = np.random.default_rng(3)
    base = simulate(800, 31)
    base["person"] = np.arange(len(base))
    copies = rng.integers(1, 4, len(base))
    d = base.loc[np.repeat(base.index, copies)].reset_index(drop=True)
    d["time"] = np.maximum(d["time"] - rng.integers(0, 3, len(d)), 0.25)
    res = aipw_survival(d, "time", "event", "a", ["x1", "x2"], [24], "ATE", tau=24,
                        cluster_col="person")
    boot_rd, boot_rmst = [], []
    groups = {p: g for p, g in d.groupby("person")}
    for _ in range(300):
        pick = rng.integers(0, len(base), len(base))
        bs = pd.concat([groups[p].assign(person=k) for k, p in enumerate(pick)])
        r = aipw_survival(bs, "time", "event", "a", ["x1", "x2"], [24], "ATE", tau=24,
                          cluster_col="person")
        boot_rd.append(r.risk_difference["estimate"].iloc[0])
        boot_rmst.append(r.rmst["difference"].iloc[0])
    se_rd, se_rmst = np.std(boot_rd, ddof=1), np.std(boot_rmst, ddof=1)
    print("IF vs bootstrap SE:", res.risk_difference["se"].iloc[0], se_rd,
          res.rmst["se"].iloc[0], se_rmst)
    assert res.risk_difference["se"].iloc[0] == pytest.approx(se_rd, rel=0.15)
    assert res.rmst["se"].iloc[0] == pytest.approx(se_rmst, rel=0.15)


# ------------------------------------------------------------------ published values


def test_rossi_reduces_to_kaplan_meier_and_r_rmst():
    # REFERENCE_RESULTS Rossi: KM at week 52 fin=0 0.69444, fin=1 0.77778 (1e-5); RMST to
    # week 52 44.833 (SE 0.918) / 46.875 (SE 0.793), difference 2.04 (-0.34 to 4.42).
    # Without covariates (constant propensity, Kaplan-Meier working models) the AIPTW
    # estimator is the Kaplan-Meier and its influence-function SE the Greenwood-type one.
    from lifelines.datasets import load_rossi

    res = aipw_survival(load_rossi(), "week", "arrest", "fin", [], [52], "ATE", tau=52)
    s = _surv(res)
    assert s[(0, 52.0)] == pytest.approx(0.69444, abs=1e-5)
    assert s[(1, 52.0)] == pytest.approx(0.77778, abs=1e-5)
    rm = res.rmst.iloc[0]
    assert rm["rmst_control"] == pytest.approx(44.833, abs=0.01)
    assert rm["rmst_treated"] == pytest.approx(46.875, abs=0.01)
    assert rm["se_control"] == pytest.approx(0.918, abs=0.005)
    assert rm["se_treated"] == pytest.approx(0.793, abs=0.005)
    assert rm["difference"] == pytest.approx(2.04, abs=0.01)
    assert rm["lower"] == pytest.approx(-0.34, abs=0.01)
    assert rm["upper"] == pytest.approx(4.42, abs=0.01)


def test_nhefs_ch17_ip_weighted_survival(nhefs_ch17):
    # REFERENCE_RESULTS NHEFS ch. 17: IP-weighted survival at 120 months 0.8066 / 0.8047,
    # crude KM 0.7617 / 0.8201, bootstrap SE of the difference ~0.020. Follow-up ends at 120
    # months (no censoring before), so with an empty outcome model the AIPTW estimate is the
    # IP-weighted Kaplan-Meier exactly, and its g-formula column the crude Kaplan-Meier.
    d = nhefs_ch17
    model = fit_propensity(d, "qsmk", NHEFS_COVARIATES, NHEFS_CATEGORICAL,
                           squares=NHEFS_SQUARES)
    x = model.spec.matrix(d)[:, 1:]
    cols = [f"c{i}" for i in range(x.shape[1])]
    frame = pd.concat([d[["survtime", "death", "qsmk"]].reset_index(drop=True),
                       pd.DataFrame(x, columns=cols)], axis=1)
    frame["ps"] = np.asarray(model.scores)
    empty = aipw_survival(frame, "survtime", "death", "qsmk", cols, [120], "ATE", ps="ps",
                          outcome_covariates=[])
    s, g = _surv(empty), _surv(empty, "gformula")
    assert s[(1, 120.0)] == pytest.approx(0.8066, abs=1e-4)
    assert s[(0, 120.0)] == pytest.approx(0.8047, abs=1e-4)
    assert g[(1, 120.0)] == pytest.approx(0.7617, abs=1e-4)
    assert g[(0, 120.0)] == pytest.approx(0.8201, abs=1e-4)
    # the influence-function SE ignores the estimation of the propensity (conservative)
    assert 0.018 <= empty.risk_difference["se"].iloc[0] <= 0.026
    full = aipw_survival(frame, "survtime", "death", "qsmk", cols, [120], "ATE", ps="ps")
    rd = full.risk_difference.iloc[0]
    assert abs(rd["estimate"]) < 0.02
    assert rd["se"] == pytest.approx(0.020, abs=0.003)


# ------------------------------------------------------------------ not estimable


def test_not_estimable_cases_raise_with_a_reason():
    d = simulate(600, 41)
    no_events = d.assign(event=np.where(d["a"] == 0, 0.0, d["event"]))
    with pytest.raises(ValueError, match="arm 0: no events"):
        aipw_survival(no_events, "time", "event", "a", ["x1"], [12])
    short = d[~((d["a"] == 1) & (d["time"] > 10))].copy()
    short.loc[(short["a"] == 1) & (short["time"] == short.loc[short["a"] == 1, "time"].max()),
              "event"] = 0.0
    with pytest.raises(ValueError, match="arm 1: everyone is censored before time 12"):
        aipw_survival(short, "time", "event", "a", ["x1"], [12])
    with pytest.raises(ValueError, match="constant"):
        aipw_survival(d.assign(k=1.0), "time", "event", "a", ["x1", "k"], [12])
    sep = d.assign(a=(d["x1"] > 0).astype(float))
    with pytest.raises(ValueError, match="no overlap|monotone|separation"):
        aipw_survival(sep, "time", "event", "a", ["x1"], [12])
    with pytest.raises(ValueError, match="no overlap"):
        aipw_survival(d.assign(p=1.0), "time", "event", "a", ["x1"], [12], ps="p")
    with pytest.raises(ValueError, match="missing"):
        aipw_survival(d.assign(a=d["a"].where(d.index > 0)), "time", "event", "a", ["x1"],
                      [12])


def test_constant_covariate_within_arm_names_the_model():
    d = simulate(600, 42)
    d["k"] = np.where(d["a"] == 1, 1.0, d["x2"])
    with pytest.raises(ValueError, match=r"outcome model, arm 1: constant covariates \['k'\]"):
        aipw_survival(d, "time", "event", "a", ["x1", "k"], [12], ps=np.full(len(d), 0.5))
