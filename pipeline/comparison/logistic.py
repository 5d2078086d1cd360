"""Frequency-weighted logistic regression by Newton–Raphson in numpy.

One implementation for the fits that run many times or on many rows: the bootstrap
resamples (a few Newton steps from the full-sample estimate) and the per-protocol switching
model (hundreds of thousands of person-interval rows). statsmodels' GLM solves each IRLS
step by least squares on the whole design (an SVD), and checks the design's rank first; the
normal equations X'WX are the same estimate at a fraction of the cost when the design is
well conditioned, which a model of a few dozen terms on many rows is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logit_newton", "logit_se"]


def logit_newton(
    X: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    beta0: np.ndarray,
    tol: float = 1e-10,
    maxiter: int = 50,
) -> tuple[np.ndarray, bool]:
    """Frequency-weighted logistic MLE by Newton–Raphson; returns (beta, converged).

    ``f`` are frequency weights (how often each row counts). Not converged (False) when the
    steps do not settle within ``maxiter`` or the estimate leaves the finite numbers, as it
    does under separation: the caller reports the model as not estimable."""
    beta = beta0.copy()
    for _ in range(maxiter):
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        grad = X.T @ (f * (y - p))
        hess = (X * (f * p * (1.0 - p))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            return beta, False
        if np.max(np.abs(step)) < tol * (1.0 + np.max(np.abs(beta))):
            return beta, True
    return beta, False


def logit_se(X: np.ndarray, f: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Model-based standard errors: square roots of the diagonal of the inverse observed
    information (X'WX)^-1 at ``beta`` (what statsmodels' GLM reports as ``bse``)."""
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    info = (X * (f * p * (1.0 - p))[:, None]).T @ X
    return np.sqrt(np.diag(np.linalg.pinv(info)))
