"""Cox log hazard ratio of one 0/1 covariate from per-time sums, for many weightings at once.

Why: a bootstrap that re-estimates the weights needs the weighted log hazard ratio of treatment
in every resample. With one binary covariate the partial likelihood depends on the data only
through, at each distinct time, the weighted sums of the rows that end there and of their
events, per arm, and the number of tied event rows -- sums the resample's Kaplan-Meier curves
are computed from anyway. So the Cox fit of every resample is a few vectorised Newton steps on
(resamples x distinct times) arrays instead of one full fit on the rows per resample.

The estimate is ``fit_cox``'s (``cox_core``): Efron's ties with case weights -- in a block of D
tied events with total event weight W, term r = 0 .. D-1 has weight W / D and removes the
fraction r / D of the block's own events from the risk set -- Newton steps from 0, halved
while they lower the likelihood. ``tests/survival/test_cox_binary.py`` checks it against
``fit_cox``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary_log_hr", "time_sums"]

LARGE = 20.0  # |log HR| at or above this is a monotone likelihood, not an estimate


def time_sums(code: np.ndarray, n_times: int, arm: np.ndarray, event: np.ndarray,
              weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct time (``code``: index of the row's time among ``n_times`` ascending
    distinct times) and arm (row 0: arm 0, row 1: arm 1): weighted sums of the rows ending
    there (``exits``, shape (2, n_times)) and of their events (``events``), and the number of
    event rows with positive weight (``tied``, shape (n_times,))."""
    cell = code.astype(np.int64) * 2 + arm.astype(np.int64)
    ev = event.astype(float)
    exits = np.bincount(cell, weights=weight, minlength=2 * n_times).reshape(n_times, 2).T
    events = np.bincount(cell, weights=weight * ev, minlength=2 * n_times)
    tied = np.bincount(code, weights=(weight > 0) * ev, minlength=n_times)
    return exits, events.reshape(n_times, 2).T, tied


def _terms(beta: np.ndarray, at_risk: np.ndarray, events: np.ndarray, tied: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at ``beta`` (B,), Efron's ties.

    ``at_risk`` and ``events``: (B, 2, K) at the K times with an event; ``tied``: (B, K)."""
    eb = np.exp(beta)[:, None]
    s0 = at_risk[:, 0] + at_risk[:, 1] * eb
    s1 = at_risk[:, 1] * eb
    e0 = events[:, 0] + events[:, 1] * eb
    e1 = events[:, 1] * eb
    d = np.maximum(tied, 1.0)
    term_wt = np.where(tied > 0, (events[:, 0] + events[:, 1]) / d, 0.0)
    log_sum = np.zeros_like(s0)
    mean_sum = np.zeros_like(s0)
    info_sum = np.zeros_like(s0)
    for r in range(int(tied.max()) if tied.size else 0):
        use = tied > r
        frac = np.where(use, r / d, 0.0)
        d0 = np.where(use, s0 - frac * e0, 1.0)
        m = np.where(use, (s1 - frac * e1) / d0, 0.0)
        log_sum += np.where(use, np.log(d0), 0.0)
        mean_sum += m
        info_sum += m * (1.0 - m)
    loglik = np.sum(events[:, 1] * beta[:, None] - term_wt * log_sum, axis=1)
    score = np.sum(events[:, 1] - term_wt * mean_sum, axis=1)
    return loglik, score, np.sum(term_wt * info_sum, axis=1)


def binary_log_hr(exits: np.ndarray, events: np.ndarray, tied: np.ndarray,
                  max_iter: int = 50, tol: float = 1e-12) -> np.ndarray:
    """The Cox log hazard ratio of arm 1 vs arm 0 for every weighting b.

    ``exits``, ``events``: (B, 2, T) from ``time_sums`` over T ascending distinct times;
    ``tied``: (B, T). NaN where not estimable: no event, an empty arm, no convergence or a
    monotone likelihood (|log HR| >= ``LARGE``)."""
    exits, events = np.asarray(exits, float), np.asarray(events, float)
    tied = np.asarray(tied, float)
    at_risk = np.cumsum(exits[..., ::-1], axis=-1)[..., ::-1]  # time >= t: reverse cumsum
    keep = np.flatnonzero(tied.sum(axis=0) > 0)  # times with an event in some weighting
    at_risk, events, tied = at_risk[..., keep], events[..., keep], tied[:, keep]
    n = exits.shape[0]
    ok = (tied.sum(axis=1) > 0) & (exits[:, 0].sum(axis=1) > 0) & (exits[:, 1].sum(axis=1) > 0)
    beta = np.zeros(n)
    done = ~ok
    converged = np.zeros(n, dtype=bool)
    if not ok.any():
        return np.full(n, np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ll, score, info = _terms(beta, at_risk, events, tied)
        for _ in range(max_iter):
            act = np.flatnonzero(~done)
            if not act.size:
                break
            step = score[act] / info[act]
            b_old, ll_old = beta[act], ll[act]
            sub = (at_risk[act], events[act], tied[act])
            new_ll, new_score, new_info = _terms(b_old + step, *sub)
            slack = 1e-9 * np.maximum(1.0, np.abs(ll_old))
            for _ in range(30):  # halve the steps that lower the likelihood
                low = ~(new_ll >= ll_old - slack)
                if not low.any():
                    break
                step = np.where(low, step / 2.0, step)
                idx = np.flatnonzero(low)
                part = _terms(b_old[idx] + step[idx], *(a[idx] for a in sub))
                new_ll[idx], new_score[idx], new_info[idx] = part
            beta[act] = b_old + step
            ll[act], score[act], info[act] = new_ll, new_score, new_info
            settled = np.abs(step) < tol * (1.0 + np.abs(beta[act]))
            bad = ~np.isfinite(beta[act]) | (np.abs(beta[act]) >= LARGE)
            converged[act[settled & ~bad]] = True
            done[act[settled | bad]] = True
    return np.where(converged & (np.abs(beta) < LARGE), beta, np.nan)
