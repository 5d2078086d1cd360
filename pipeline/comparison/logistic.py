"""Frequency-weighted logistic regression by Newton–Raphson in numpy.

One implementation for the fits that run many times or on many rows: the bootstrap
resamples (``logit_replicates``: all resamples at once, from the full-sample estimate) and
the per-protocol switching model (hundreds of thousands of person-interval rows).
statsmodels' GLM solves each IRLS step by least squares on the whole design (an SVD), and
checks the design's rank first; the normal equations X'WX are the same estimate at a
fraction of the cost when the design is well conditioned, which a model of a few dozen
terms on many rows is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["logit_newton", "logit_newton_codes", "logit_replicates"]

# elements of one (rows x replicates) working array: bounds the memory of a chunk of resamples
CHUNK_ELEMENTS = 4_000_000


def _newton(
    derivatives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    beta0: np.ndarray,
    tol: float,
    maxiter: int,
) -> tuple[np.ndarray, bool, np.ndarray]:
    """Newton-Raphson on a log-likelihood given its (gradient, Hessian) at beta: the loop and
    stopping rule every logistic fit here shares. Returns (beta, converged, last Hessian)."""
    beta = beta0.copy()
    hess = np.zeros((beta.size, beta.size))
    for _ in range(maxiter):
        grad, hess = derivatives(beta)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            return beta, False, hess
        if np.max(np.abs(step)) < tol * (1.0 + np.max(np.abs(beta))):
            return beta, True, hess
    return beta, False, hess


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

    def derivatives(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        return X.T @ (f * (y - p)), (X * (f * p * (1.0 - p))[:, None]).T @ X

    beta, converged, _ = _newton(derivatives, beta0, tol, maxiter)
    return beta, converged


def replicate_chunk(n_rows: int, n_total: int) -> int:
    """How many resamples ``logit_replicates`` fits at once: (rows x replicates) working arrays
    stay under ``CHUNK_ELEMENTS`` elements (32 MB each) whatever the number of rows."""
    return max(1, min(n_total, CHUNK_ELEMENTS // max(n_rows, 1)))


def logit_replicates(
    X: np.ndarray,
    y: np.ndarray,
    F: np.ndarray,
    beta0: np.ndarray,
    tol: float = 1e-11,
    maxiter: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """The frequency-weighted logistic MLE of every resample (rows of ``F``) at once.

    Why: a bootstrap of the propensity score re-fits the model hundreds of times; each Newton
    step of each resample builds its own Hessian (rows x terms^2). Here every resample takes
    steps with one fixed matrix, the full-sample information at ``beta0`` (the MLE of the full
    sample, whose frequencies are all 1), so that one iteration of all resamples is two matrix
    products (rows x terms x resamples). A resample's information differs from the full
    sample's by O(n^-1/2), so the iteration contracts by about that factor per step and
    reaches the same fixed point as Newton's method -- the resample's MLE, to ``tol``. A
    resample that has not settled within ``maxiter`` steps (separation, tiny samples) is
    handed to ``logit_newton``, which then decides whether it converges.

    Returns (betas, converged): shapes (B, terms) and (B,).
    """
    F = np.atleast_2d(np.asarray(F, dtype=float))
    n_rep = F.shape[0]
    p0 = 1.0 / (1.0 + np.exp(-(X @ beta0)))
    info = (X * (p0 * (1.0 - p0))[:, None]).T @ X
    try:
        metric = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        metric = np.linalg.pinv(info)
    betas = np.tile(beta0, (n_rep, 1))
    active = np.arange(n_rep)
    done = np.zeros(n_rep, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(maxiter):
            if not active.size:
                break
            b = betas[active]  # (a, k)
            p = 1.0 / (1.0 + np.exp(-(X @ b.T)))  # (n, a)
            grad = X.T @ (F[active].T * (y[:, None] - p))  # (k, a)
            step = (metric @ grad).T  # (a, k)
            b = b + step
            betas[active] = b
            finite = np.all(np.isfinite(b), axis=1)
            settled = finite & (np.max(np.abs(step), axis=1)
                                < tol * (1.0 + np.max(np.abs(b), axis=1)))
            done[active[settled]] = True
            active = active[finite & ~settled]
    converged = done.copy()
    for r in np.flatnonzero(~done):  # left to Newton's method (rare: a few, or none)
        betas[r], converged[r] = logit_newton(X, y, F[r], beta0)
    return betas, converged


def logit_newton_codes(
    code: np.ndarray,
    n_codes: int,
    pattern: np.ndarray,
    patterns: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    beta0: np.ndarray,
    tol: float = 1e-10,
    maxiter: int = 50,
) -> tuple[np.ndarray, bool, np.ndarray]:
    """``logit_newton`` for the design [one-hot(code) | patterns[pattern]], never built.

    Why: the per-protocol switching model has one indicator per interval and the baseline
    covariates; its rows are (interval, covariate pattern, outcome) combinations, millions at
    scale, and the explicit design (rows x (intervals + covariates)) was the largest array of
    the analysis. Every sum Newton's method needs is a sum over rows of a function of the
    row's interval and pattern, so it is taken with ``bincount`` over the codes and then
    multiplied by the (few) distinct patterns: memory linear in the rows with no factor for
    the terms, and the same estimate as ``logit_newton`` on the explicit design.

    ``code`` (0 .. n_codes - 1) and ``pattern`` (rows of ``patterns``) per row; returns
    (beta, converged, information at beta): beta is the interval terms then the covariates.
    """
    n_pat = patterns.shape[0]
    cell = code.astype(np.int64) * n_pat + pattern  # (interval, pattern) of each row
    n_cell = n_codes * n_pat

    def sums(weights: np.ndarray) -> np.ndarray:  # per (interval, pattern): (n_codes, n_pat)
        return np.bincount(cell, weights=weights, minlength=n_cell).reshape(n_codes, n_pat)

    def information(p: np.ndarray) -> np.ndarray:
        cw = sums(f * p * (1.0 - p))
        by_pattern = cw.sum(axis=0)
        top = np.hstack([np.diag(cw.sum(axis=1)), cw @ patterns])
        bottom = np.hstack([(cw @ patterns).T, (patterns * by_pattern[:, None]).T @ patterns])
        return np.vstack([top, bottom])

    def fitted(beta: np.ndarray) -> np.ndarray:
        eta = beta[:n_codes][code] + (patterns @ beta[n_codes:])[pattern]
        return 1.0 / (1.0 + np.exp(-eta))

    def derivatives(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = fitted(beta)
        cr = sums(f * (y - p))
        return (np.concatenate([cr.sum(axis=1), patterns.T @ cr.sum(axis=0)]),
                information(p))

    beta, converged, hess = _newton(derivatives, beta0, tol, maxiter)
    if not np.all(np.isfinite(beta)):
        return beta, False, hess
    return beta, converged, information(fitted(beta))
