"""Counting-process (start, stop] data in `fit_cox(entry_col=...)` and `kaplan_meier(entry=...)`.

Checks: (1) splitting follow-up into episodes leaves every estimate unchanged (property test on
Rossi, whose unsplit fit is checked against R elsewhere), including the cluster-robust SE;
(2) agreement with lifelines' CoxTimeVaryingFitter (time-varying weights, strata, ties, real
left truncation) and KaplanMeierFitter(entry=...) to 1e-6; (3) the cluster-robust variance
against an infinitesimal jackknife by finite differences (lifelines has no robust variance
for start-stop data).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.published.rossi import load as load_rossi
from pipeline.survival import fit_cox, kaplan_meier

lifelines = pytest.importorskip("lifelines")

COV = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
TOL = 1e-6


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    df = load_rossi()
    return df.assign(id=np.arange(len(df)), week=df["week"].astype(float))


def split_at(df: pd.DataFrame, cuts, dur: str = "week", event: str = "arrest") -> pd.DataFrame:
    """One row per person and interval between cut points, as survSplit: (start, stop], ev."""
    edges = np.unique(np.concatenate([[0.0], np.asarray(cuts, dtype=float)]))
    parts = []
    for lo, hi in zip(edges, np.append(edges[1:], np.inf), strict=True):
        sub = df[df[dur] > lo].copy()
        sub["start"] = lo
        sub["stop"] = np.minimum(sub[dur], hi)
        sub["ev"] = np.where(sub[dur] <= hi, sub[event], 0)
        parts.append(sub)
    return pd.concat(parts, ignore_index=True)


def ctv(df: pd.DataFrame, cov, weights: str | None = None, strata=None):
    fitter = lifelines.CoxTimeVaryingFitter()
    cols = [*cov, "start", "stop", "ev", *([weights] if weights else []), *(strata or [])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fitter.fit(df[cols], event_col="ev", start_col="start", stop_col="stop",
                          weights_col=weights, strata=strata)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.floats(0.5, 51.5, allow_nan=False), min_size=1, max_size=5))
def test_splitting_rossi_changes_nothing(rossi, cuts):
    whole = fit_cox(rossi, "week", "arrest", COV, robust=True)
    split = split_at(rossi, cuts)
    part = fit_cox(split, "stop", "ev", COV, entry_col="start", cluster_col="id")
    cols = ["coef", "se", "robust_se"]
    np.testing.assert_allclose(part.summary[cols], whole.summary[cols], rtol=0, atol=1e-9)
    assert part.loglik == pytest.approx(whole.loglik, abs=1e-8)
    assert part.n == len(split) and part.n_events == whole.n_events
    km_whole = kaplan_meier(rossi["week"], rossi["arrest"]).set_index("time")
    km_split = kaplan_meier(split["stop"], split["ev"], entry=split["start"]).set_index("time")
    at = km_whole.index
    for col in ("surv", "std_err", "lower", "upper", "n_risk", "n_event"):
        np.testing.assert_allclose(km_split.loc[at, col], km_whole[col], rtol=0, atol=1e-12)


def test_splitting_with_strata_and_breslow(rossi):
    cuts = [3.5, 10, 26, 40.25]
    for ties in ("efron", "breslow"):
        whole = fit_cox(rossi, "week", "arrest", ["age", "prio", "fin"], strata=["wexp", "mar"],
                        robust=True, ties=ties)
        part = fit_cox(split_at(rossi, cuts), "stop", "ev", ["age", "prio", "fin"],
                       strata=["wexp", "mar"], entry_col="start", cluster_col="id", ties=ties)
        np.testing.assert_allclose(part.summary[["coef", "se", "robust_se"]],
                                   whole.summary[["coef", "se", "robust_se"]], atol=1e-9)
        assert part.score_test["stat"] == pytest.approx(whole.score_test["stat"], abs=1e-8)


def test_zero_entry_is_the_unsplit_fit(rossi):
    whole = fit_cox(rossi, "week", "arrest", COV)
    zero = fit_cox(rossi.assign(start=0.0), "week", "arrest", COV, entry_col="start")
    np.testing.assert_allclose(zero.summary[["coef", "se"]], whole.summary[["coef", "se"]],
                               atol=1e-12)
    assert np.isnan(zero.concordance) and not np.isnan(whole.concordance)
    km = kaplan_meier(rossi["week"], rossi["arrest"])
    km0 = kaplan_meier(rossi["week"], rossi["arrest"], entry=np.zeros(len(rossi)))
    pd.testing.assert_frame_equal(km0, km)


def test_rossi_time_varying_weights_match_lifelines(rossi):
    split = split_at(rossi, [7.3, 20, 33.5])
    split["w"] = np.random.default_rng(1).uniform(0.5, 2.0, len(split))
    ours = fit_cox(split, "stop", "ev", COV, entry_col="start", weights_col="w")
    ref = ctv(split, COV, weights="w")
    np.testing.assert_allclose(ours.coef, ref.params_, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.summary["se"], ref.standard_errors_, rtol=0, atol=TOL)
    assert ours.loglik == pytest.approx(ref.log_likelihood_, abs=TOL)


def random_counting(seed: int, n: int = 400) -> pd.DataFrame:
    """Integer times (many ties, entry times equal to other rows' event times), strata."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.binomial(1, 0.4, n).astype(float)
    stop = np.ceil(rng.exponential(12.0 * np.exp(-0.5 * x1 + 0.4 * x2))).clip(1, 30)
    start = np.floor(rng.uniform(0, 1, n) * stop)
    start[rng.uniform(size=n) < 0.5] = 0.0
    return pd.DataFrame({
        "start": start, "stop": stop, "ev": (rng.uniform(size=n) < 0.7).astype(int),
        "x1": x1, "x2": x2, "g": rng.integers(0, 2, n), "w": rng.uniform(0.2, 3.0, n),
        "id": rng.integers(0, n // 3, n),
    })


@pytest.mark.parametrize("seed", [11, 12])
def test_random_ties_truncation_strata_match_lifelines(seed):
    df = random_counting(seed)
    for strata in (None, ["g"]):
        ours = fit_cox(df, "stop", "ev", ["x1", "x2"], entry_col="start", weights_col="w",
                       strata=strata)
        ref = ctv(df, ["x1", "x2"], weights="w", strata=strata)
        np.testing.assert_allclose(ours.coef, ref.params_, rtol=0, atol=TOL)
        np.testing.assert_allclose(ours.summary["se"], ref.standard_errors_, rtol=0, atol=TOL)


def test_cluster_robust_variance_is_the_infinitesimal_jackknife():
    """dbeta/d(log weight of cluster c) = V U_c: the sandwich's dfbeta, by central differences."""
    df = random_counting(5, n=150)
    df["id"] = df["id"] % 15
    cov = ["x1", "x2"]
    fit = fit_cox(df, "stop", "ev", cov, entry_col="start", weights_col="w", strata="g",
                  cluster_col="id")
    eps = 1e-6
    rows = []
    for c in np.unique(df["id"]):
        hit = (df["id"] == c).to_numpy()
        betas = [fit_cox(df.assign(w=df["w"] * np.where(hit, 1 + s, 1.0)), "stop", "ev", cov,
                         entry_col="start", weights_col="w", strata="g",
                         compute_concordance=False).coef.to_numpy() for s in (eps, -eps)]
        rows.append((betas[0] - betas[1]) / (2 * eps))
    dfbeta = np.array(rows)
    np.testing.assert_allclose(fit.robust_var.to_numpy(), dfbeta.T @ dfbeta, rtol=1e-5)


def test_km_matches_lifelines_with_entry_and_weights():
    """Entries at half-integers (lifelines counts a row entering at t as at risk at t, R and
    we do not), integer weights (lifelines truncates weights to integers in Greenwood)."""
    rng = np.random.default_rng(3)
    n = 300
    stop = rng.integers(1, 40, n).astype(float)
    entry = np.where(rng.uniform(size=n) < 0.4, 0.0, np.floor(rng.uniform(size=n) * stop) + 0.5)
    entry = np.where(entry >= stop, 0.0, entry)
    event = (rng.uniform(size=n) < 0.6).astype(float)
    w = rng.integers(1, 4, n).astype(float)
    ours = kaplan_meier(stop, event, weights=w, entry=entry).set_index("time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifelines.KaplanMeierFitter().fit(stop, event, entry=entry, weights=w)
    at = ours.index[1:]
    np.testing.assert_allclose(ours.loc[at, "surv"], ref.survival_function_.iloc[:, 0].loc[at],
                               atol=TOL)
    np.testing.assert_allclose(ours.loc[at, "n_risk"], ref.event_table.loc[at, "at_risk"])
    se_log = ours.loc[at, "std_err"] / ours.loc[at, "surv"]
    np.testing.assert_allclose(se_log, np.sqrt(ref._cumulative_sq_.loc[at]), atol=TOL)
    ci = ref.confidence_interval_.loc[at]
    np.testing.assert_allclose(ours.loc[at, "lower"], ci.iloc[:, 0], atol=TOL)
    np.testing.assert_allclose(ours.loc[at, "upper"], ci.iloc[:, 1], atol=TOL)


def test_at_risk_is_open_at_entry():
    """A row entering at t is not at risk at t: (entry, stop], as R."""
    km = kaplan_meier([2.0, 3.0, 3.0], [1, 1, 0], entry=[0.0, 0.0, 2.0]).set_index("time")
    assert km.loc[2.0, "n_risk"] == 2 and km.loc[2.0, "surv"] == pytest.approx(0.5)
    assert km.loc[3.0, "n_risk"] == 2 and km.loc[3.0, "surv"] == pytest.approx(0.25)
    assert km.loc[0.0, "n_risk"] == 2


def test_bad_entry_is_rejected():
    df = pd.DataFrame({"start": [0.0, 2.0], "stop": [1.0, 2.0], "ev": [1, 0], "x": [0.0, 1.0]})
    with pytest.raises(ValueError, match="below"):
        fit_cox(df, "stop", "ev", ["x"], entry_col="start")
    with pytest.raises(ValueError, match="below time"):
        kaplan_meier(df["stop"], df["ev"], entry=df["start"])
    with pytest.raises(ValueError, match="non-negative"):
        kaplan_meier([1.0], [1], entry=[-1.0])
