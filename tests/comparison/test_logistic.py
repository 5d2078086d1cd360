"""The numpy Newton logistic fit against statsmodels' GLM (an independent implementation)."""

import numpy as np
import pytest
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM

from pipeline.comparison.logistic import (
    CHUNK_ELEMENTS,
    logit_newton,
    logit_newton_codes,
    logit_replicates,
    replicate_chunk,
)


def test_matches_statsmodels_glm_with_frequency_weights():
    rng = np.random.default_rng(3)
    n = 4000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n),
                         rng.normal(size=n) ** 2])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ [-1.0, 0.8, -0.5, 0.3])))).astype(float)
    f = rng.integers(1, 4, n).astype(float)
    beta, ok = logit_newton(X, y, f, np.zeros(4))
    ref = GLM(y, X, family=Binomial(), freq_weights=f).fit()
    assert ok
    np.testing.assert_allclose(beta, ref.params, rtol=1e-8, atol=1e-10)


def test_separation_is_reported_not_converged():
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    X = np.column_stack([np.ones(4), x])
    beta, ok = logit_newton(X, (x > 0).astype(float), np.ones(4), np.zeros(2))
    assert not ok


@pytest.mark.parametrize("start", [0.0, 5.0])
def test_start_value_does_not_change_the_estimate(start):
    rng = np.random.default_rng(8)
    X = np.column_stack([np.ones(500), rng.normal(size=500)])
    y = (rng.random(500) < 0.3).astype(float)
    a, ok_a = logit_newton(X, y, np.ones(500), np.zeros(2))
    b, ok_b = logit_newton(X, y, np.ones(500), np.full(2, start / 10))
    assert ok_a and ok_b
    np.testing.assert_allclose(a, b, atol=1e-9)


def _bootstrap_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n),
                         rng.normal(size=n) ** 2])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ [-1.0, 0.8, -0.5, 0.3])))).astype(float)
    beta0, _ = logit_newton(X, y, np.ones(n), np.zeros(4))
    F = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(30)])
    return X, y, F.astype(float), beta0


@pytest.mark.parametrize("n", [60, 3000])
def test_replicates_fitted_together_equal_newton_fits_one_by_one(n):
    """Every resample's fixed-metric fit is that resample's MLE (Newton's, and statsmodels'
    for one of them), on a large sample (fast contraction) and a small one (slow)."""
    X, y, F, beta0 = _bootstrap_data(n, 4)
    betas, ok = logit_replicates(X, y, F, beta0)
    for f, b, fitted in zip(F, betas, ok, strict=True):
        ref, ref_ok = logit_newton(X, y, f, beta0)
        assert fitted == ref_ok
        if ref_ok:
            np.testing.assert_allclose(b, ref, rtol=1e-8, atol=1e-9)
    glm = GLM(y, X, family=Binomial(), freq_weights=F[0]).fit()
    np.testing.assert_allclose(betas[0], glm.params, rtol=1e-7, atol=1e-9)
    assert ok.sum() >= len(F) - 3


def test_a_separated_resample_is_not_converged_and_the_others_are():
    x = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
    X = np.column_stack([np.ones(6), x])
    y = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    beta0, ok0 = logit_newton(X, y, np.ones(6), np.zeros(2))
    separated = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 2.0])  # y = (x > 0) among rows drawn
    betas, ok = logit_replicates(X, y, np.stack([np.ones(6), separated]), beta0)
    assert ok0 and ok[0] and not ok[1]
    np.testing.assert_allclose(betas[0], beta0, atol=1e-9)


def test_chunks_bound_the_working_arrays():
    assert replicate_chunk(100_000, 200) * 100_000 <= CHUNK_ELEMENTS
    assert replicate_chunk(10_000_000, 200) == 1
    assert replicate_chunk(50, 200) == 200


def test_fit_on_codes_equals_the_fit_on_the_explicit_design():
    """The switching model's fit on (interval, covariate pattern) codes: the same estimate as
    Newton on the explicit one-hot + covariate design and as statsmodels' GLM, with GLM's
    standard errors from the information it returns."""
    rng = np.random.default_rng(11)
    n, k = 6000, 5
    patterns = np.column_stack([rng.normal(size=40), rng.integers(0, 2, 40)])
    code, pattern = rng.integers(0, k, n), rng.integers(0, 40, n)
    eta = np.linspace(-2, -1, k)[code] + patterns[pattern] @ [0.6, -0.4]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    f = rng.integers(1, 3, n).astype(float)
    X = np.hstack([(code[:, None] == np.arange(k)).astype(float), patterns[pattern]])
    beta, ok, info = logit_newton_codes(code, k, pattern, patterns, y, f, np.zeros(k + 2))
    ref, ref_ok = logit_newton(X, y, f, np.zeros(k + 2))
    glm = GLM(y, X, family=Binomial(), freq_weights=f).fit()
    assert ok and ref_ok
    np.testing.assert_allclose(beta, ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(beta, glm.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(info))), glm.bse, rtol=1e-6)
