"""Coefficients of the risk-set weights that balance the trials exactly.

Within trial j, comparison person c weighs ``s_c exp(x_c b) / sum_{C_j} s exp(x b)`` (the
sum over the trial's comparison people only). ``b`` solves

    sum_j sum_{c in C_j} w_c(b) x_c = sum_j x_j(treated)

— the weighted comparison arm, pooled over the trials, has exactly the treated people's
covariate means (entropy balancing within risk sets; Hainmueller 2012, with the weights of each
trial normalised to its one treated person). These are the minimiser of the convex function
``L(b) = sum_j [log sum_{C_j} s exp(x b) - x_j(treated) b]``, found by Newton's method with step
halving. A conditional logistic regression (the treated person inside their own risk set) has
nearly the same form, but its score equations balance the treated against the risk set
*including* themselves, which leaves the comparison arm short of the treated means by about
1 / (controls per trial) of the gap — a bias the simulation study showed (docs/trial_simulation.md).
"""

from __future__ import annotations

import numpy as np


class BalanceError(ValueError):
    """No coefficients balance the trials exactly (the treated lie outside what re-weighting
    the comparison people can reach)."""


def _state(b: np.ndarray, x: np.ndarray, g: np.ndarray, s: np.ndarray, target: np.ndarray
           ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Loss, gradient, Hessian and weights at ``b``."""
    n_trials = target.shape[0]
    lp = x @ b
    top = np.full(n_trials, -np.inf)
    np.maximum.at(top, g, lp)
    e = s * np.exp(lp - top[g])
    total = np.bincount(g, weights=e, minlength=n_trials)
    w = e / total[g]
    loss = float(np.sum(np.log(total) + top) - np.sum(target @ b))
    mean = np.column_stack([np.bincount(g, weights=w * x[:, k], minlength=n_trials)
                            for k in range(x.shape[1])])
    grad = mean.sum(axis=0) - target.sum(axis=0)
    hess = (x * w[:, None]).T @ x - mean.T @ mean
    return loss, grad, hess, w


def balancing_coefficients(x: np.ndarray, trial: np.ndarray, s: np.ndarray,
                           target: np.ndarray, max_iter: int = 200, tol: float = 1e-10
                           ) -> np.ndarray:
    """``b`` for comparison rows ``x`` (n x p) in trials ``trial`` (codes 0..T-1) with sampling
    weights ``s``, and each trial's treated covariates ``target`` (T x p). Raises
    ``BalanceError`` when Newton's method does not reach exact balance."""
    p = x.shape[1]
    b = np.zeros(p)
    scale = np.maximum(np.abs(target).mean(axis=0), x.std(axis=0)) + 1e-12
    n_trials = target.shape[0]
    loss, grad, hess, _ = _state(b, x, trial, s, target)
    for _ in range(max_iter):
        if np.max(np.abs(grad) / (n_trials * scale)) < tol:
            return b
        try:
            step = np.linalg.solve(hess + 1e-12 * np.eye(p) * np.trace(hess) / p, grad)
        except np.linalg.LinAlgError:
            raise BalanceError("the characteristics are collinear among the comparison "
                               "people") from None
        t = 1.0
        while t > 1e-10:
            nb = b - t * step
            new = _state(nb, x, trial, s, target)
            if np.isfinite(new[0]) and new[0] <= loss + 1e-12 * abs(loss):
                break
            t /= 2
        else:
            break
        b = nb
        loss, grad, hess, _ = new
        if not np.all(np.isfinite(b)) or np.max(np.abs(b) * x.std(axis=0)) > 50:
            break
    if np.max(np.abs(grad) / (n_trials * scale)) < 1e-6:
        return b  # balanced to well within any reported precision
    raise BalanceError("the treated people's characteristics cannot be matched by "
                       "re-weighting the comparison people (they lie outside what the "
                       "comparison people cover)")
