"""The numpy Newton logistic fit against statsmodels' GLM (an independent implementation)."""

import numpy as np
import pytest
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM

from pipeline.comparison.logistic import logit_newton, logit_se


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
    np.testing.assert_allclose(logit_se(X, f, beta), ref.bse, rtol=1e-6)


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
