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

from dataclasses import dataclass

import numpy as np

__all__ = ["arm_sums", "binary_log_hr", "tied_events", "time_sums"]

LARGE = 20.0  # |log HR| at or above this is a monotone likelihood, not an estimate


def arm_sums(code: np.ndarray, n_times: int, arm: np.ndarray, event: np.ndarray,
             weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct time (``code``: index of the row's time among ``n_times`` ascending
    distinct times) and arm (row 0: arm 0, row 1: arm 1): weighted sums of the rows ending
    there (``exits``, shape (2, n_times)) and of their events (``events``) -- all that a
    weighted Kaplan-Meier curve per arm needs."""
    cell = code.astype(np.int64) * 2 + arm.astype(np.int64)
    exits = np.bincount(cell, weights=weight, minlength=2 * n_times).reshape(n_times, 2).T
    events = np.bincount(cell, weights=weight * event.astype(float), minlength=2 * n_times)
    return exits, events.reshape(n_times, 2).T


def tied_events(code: np.ndarray, n_times: int, event: np.ndarray, weight: np.ndarray
                ) -> np.ndarray:
    """Number of event rows with positive weight at each distinct time (Efron's ties)."""
    return np.bincount(code, weights=(weight > 0) * event.astype(float), minlength=n_times)


def time_sums(code: np.ndarray, n_times: int, arm: np.ndarray, event: np.ndarray,
              weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``arm_sums`` and ``tied_events``: everything ``binary_log_hr`` needs of one
    weighting."""
    return (*arm_sums(code, n_times, arm, event, weight),
            tied_events(code, n_times, event, weight))


TERM_BUDGET = 4_000_000  # Efron terms (event rows x weightings) handled at once: bounds memory


@dataclass(frozen=True)
class _Efron:
    """The Efron terms of a group of weightings, flattened: term j belongs to the (weighting,
    event time) cell ``cell[j]`` and removes the fraction ``frac[j]`` of that cell's events."""

    cell: np.ndarray
    frac: np.ndarray
    term_wt: np.ndarray  # per cell: event weight / number of tied events (0 without events)
    n_cells: int

    @classmethod
    def of(cls, events: np.ndarray, tied: np.ndarray) -> _Efron:
        d = tied.ravel().astype(np.int64)
        cells = np.flatnonzero(d > 0)
        counts = d[cells]
        cell = np.repeat(cells, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        frac = (np.arange(cell.size) - first) / np.repeat(counts, counts)
        total = (events[:, 0] + events[:, 1]).ravel()
        term_wt = np.where(d > 0, total / np.maximum(d, 1), 0.0)
        return cls(cell, frac, term_wt, d.size)


def _terms(beta: np.ndarray, at_risk: np.ndarray, events: np.ndarray, efron: _Efron
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at ``beta`` (B,), Efron's ties.

    ``at_risk`` and ``events``: (B, 2, K) at the K times with an event; one term per event
    row and weighting (``efron``), so the cost is the number of event rows, not the largest
    number of ties times the number of times."""
    shape = at_risk[:, 0].shape
    eb = np.exp(beta)[:, None]
    s0 = (at_risk[:, 0] + at_risk[:, 1] * eb).ravel()
    s1 = (at_risk[:, 1] * eb).ravel()
    e0 = (events[:, 0] + events[:, 1] * eb).ravel()
    e1 = (events[:, 1] * eb).ravel()
    c, f = efron.cell, efron.frac
    d0 = s0[c] - f * e0[c]
    m = (s1[c] - f * e1[c]) / d0

    def per_weighting(values: np.ndarray) -> np.ndarray:
        cell_sum = np.bincount(c, weights=values, minlength=efron.n_cells)
        return np.sum((efron.term_wt * cell_sum).reshape(shape), axis=1)

    loglik = np.sum(events[:, 1] * beta[:, None], axis=1) - per_weighting(np.log(d0))
    score = np.sum(events[:, 1], axis=1) - per_weighting(m)
    return loglik, score, per_weighting(m * (1.0 - m))


def binary_log_hr(exits: np.ndarray, events: np.ndarray, tied: np.ndarray,
                  max_iter: int = 50, tol: float = 1e-12) -> np.ndarray:
    """The Cox log hazard ratio of arm 1 vs arm 0 for every weighting b.

    ``exits``, ``events``: (B, 2, T) from ``time_sums`` over T ascending distinct times;
    ``tied``: (B, T). NaN where not estimable: no event, an empty arm, no convergence or a
    monotone likelihood (|log HR| >= ``LARGE``). Weightings are fitted in groups of at most
    ``TERM_BUDGET`` Efron terms."""
    exits, events = np.asarray(exits, float), np.asarray(events, float)
    tied = np.asarray(tied, float)
    out = np.full(exits.shape[0], np.nan)
    per = np.maximum(tied.sum(axis=1), 1.0)
    group = np.floor(np.cumsum(per) / TERM_BUDGET).astype(np.int64)  # consecutive groups
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        out[idx] = _fit(exits[idx], events[idx], tied[idx], max_iter, tol)
    return out


def _fit(exits: np.ndarray, events: np.ndarray, tied: np.ndarray, max_iter: int, tol: float
         ) -> np.ndarray:
    """``binary_log_hr`` for one group of weightings."""
    at_risk = np.cumsum(exits[..., ::-1], axis=-1)[..., ::-1]  # time >= t: reverse cumsum
    keep = np.flatnonzero(tied.sum(axis=0) > 0)  # times with an event in some weighting
    at_risk, events, tied = at_risk[..., keep], events[..., keep], tied[:, keep]
    n = exits.shape[0]
    ok = (tied.sum(axis=1) > 0) & (exits[:, 0].sum(axis=1) > 0) & (exits[:, 1].sum(axis=1) > 0)
    if not ok.any():
        return np.full(n, np.nan)
    efron = _Efron.of(events, tied)
    beta = np.zeros(n)
    done = ~ok
    converged = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ll, score, info = _terms(beta, at_risk, events, efron)
        for _ in range(max_iter):
            act = ~done
            if not act.any():
                break
            step = np.where(act, score / info, 0.0)
            new_ll, new_score, new_info = _terms(beta + step, at_risk, events, efron)
            slack = 1e-9 * np.maximum(1.0, np.abs(ll))
            for _ in range(30):  # halve the steps that lower the likelihood
                low = act & ~(new_ll >= ll - slack)
                if not low.any():
                    break
                step = np.where(low, step / 2.0, step)
                new_ll, new_score, new_info = _terms(beta + step, at_risk, events, efron)
            beta = np.where(act, beta + step, beta)
            ll = np.where(act, new_ll, ll)
            score, info = np.where(act, new_score, score), np.where(act, new_info, info)
            settled = act & (np.abs(step) < tol * (1.0 + np.abs(beta)))
            bad = act & (~np.isfinite(beta) | (np.abs(beta) >= LARGE))
            converged |= settled & ~bad
            done |= settled | bad
    return np.where(converged & (np.abs(beta) < LARGE), beta, np.nan)
