"""Vectorised Cox partial-likelihood machinery (Efron or Breslow ties, strata, case weights).

Everything is computed from cumulative sums over rows sorted by (stratum, time descending):
no loops over people or event times. Used by `cox.fit_cox` and `ph_test.ph_test`.
Arrays of covariates are held as (p, n) so that the cumulative sums run over contiguous rows.
Optional left truncation (counting-process rows at risk on (entry, stop], as R's
Surv(start, stop, event)): a risk-set sum at t is the sum over rows with stop >= t minus the
sum over rows with entry >= t, the second from a cumulative sum in (stratum, entry
descending) order, so the cost stays O(n log n) per fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Products over the n rows use einsum rather than BLAS: for p x n shapes multi-threaded
# BLAS gains nothing and, on a busy 2-core machine, stalls for milliseconds per call.


def matvec(beta: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """beta' X for X held as (p, n)."""
    return np.einsum("k,kn->n", beta, xt)


def rowdot(xt: np.ndarray, v: np.ndarray) -> np.ndarray:
    """X' v for X held as (p, n): the p sums over rows."""
    return np.einsum("kn,n->k", xt, v)


def gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a b' for (p, n) arrays: a p x p cross-product over rows."""
    return np.einsum("kn,jn->kj", a, b)


def segmented_cumsum(values: np.ndarray, segments: np.ndarray | None) -> np.ndarray:
    """Cumulative sum along the last axis, restarting at each new value of `segments`."""
    if segments is None:
        return np.cumsum(values, axis=-1)
    flat = values.reshape(-1, values.shape[-1]).T
    out = pd.DataFrame(flat).groupby(segments, sort=False).cumsum().to_numpy()
    return np.ascontiguousarray(out.T).reshape(values.shape)


@dataclass
class CoxData:
    """Model data sorted by (stratum, time descending), with the tied-time group structure."""

    xt: np.ndarray  # (p, n) column-centred covariates, sorted rows
    x_mean: np.ndarray  # the centring means
    time: np.ndarray
    event: np.ndarray  # 0/1 float
    weight: np.ndarray
    stratum: np.ndarray  # int codes
    order: np.ndarray  # sorted row k is original row order[k]
    group: np.ndarray  # (stratum, time) block of each sorted row
    group_start: np.ndarray
    group_end: np.ndarray  # last row of each block
    group_stratum: np.ndarray
    death_groups: np.ndarray  # blocks with at least one event
    death_group_of_row: np.ndarray  # index into death_groups, -1 if the block has no event
    n_dead: np.ndarray  # events per death block
    w_dead: np.ndarray  # summed event weights per death block
    event_rows: np.ndarray  # sorted-row index of each event (grouped by block)
    term_start: np.ndarray  # first Efron term / event of each death block
    tied_rows: np.ndarray  # event rows of blocks with tied events (Efron only)
    tied_start: np.ndarray  # start of each tied block within tied_rows
    tied_terms: np.ndarray  # Efron terms with frac > 0
    tied_term_block: np.ndarray  # their tied-block index
    no_ties: bool  # one event per death block: Efron term k is death block k
    extra_terms: np.ndarray  # Efron terms after the first of their block
    extra_start: np.ndarray  # segment starts of extra_terms by block
    extra_block: np.ndarray  # the block of each segment
    death_stratum: np.ndarray  # stratum of each death block
    row_cum_index: np.ndarray  # latest death block at or before the row's time (nd if none)
    rep: np.ndarray  # death block of each Efron term (one term per event)
    frac: np.ndarray  # Efron fraction dd/d (0 for Breslow)
    multi_strata: bool
    # left truncation (all None without entry times)
    entry: np.ndarray | None = None  # sorted-order entry times
    entry_perm: np.ndarray | None = None  # sorted rows in (stratum, entry descending) order
    entry_segments: np.ndarray | None = None  # their strata (for the segmented cumsum)
    entry_pos: np.ndarray | None = None  # per death block: last entry_perm row with entry >= t
    entry_cum_index: np.ndarray | None = None  # latest death block at or before the entry

    @property
    def n_groups(self) -> int:
        """Number of distinct (stratum, time) blocks."""
        return self.group_start.size


def prepare(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    stratum: np.ndarray,
    ties: str = "efron",
    entry: np.ndarray | None = None,
) -> CoxData:
    """Sort the data and precompute the tied-time and Efron bookkeeping (done once per fit).

    With `entry`, a row is at risk at the event times t with entry < t <= time.
    """
    if ties not in ("efron", "breslow"):
        raise ValueError("ties must be 'efron' or 'breslow'")
    if np.unique(stratum).size > 1:
        order = np.lexsort((-time, stratum))
    else:
        order = np.argsort(-time, kind="stable")
    xt = np.ascontiguousarray(x[order].T)
    x_mean = xt.mean(axis=1)
    xt -= x_mean[:, None]
    ts, es, ws, ss = time[order], event[order], weight[order], stratum[order]
    n = ts.size
    new = np.ones(n, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    group = np.cumsum(new) - 1
    group_start = np.flatnonzero(new)
    group_end = np.concatenate([group_start[1:], [n]]) - 1
    n_groups = group_start.size
    n_dead_all = np.bincount(group, weights=es, minlength=n_groups)
    w_dead_all = np.bincount(group, weights=es * ws, minlength=n_groups)
    death_groups = np.flatnonzero(n_dead_all > 0)
    dg_index = np.full(n_groups, -1)
    dg_index[death_groups] = np.arange(death_groups.size)
    n_dead = n_dead_all[death_groups].astype(np.int64)
    w_dead = w_dead_all[death_groups]
    rep = np.repeat(np.arange(death_groups.size), n_dead)
    term_start = np.concatenate([[0], np.cumsum(n_dead)[:-1]]).astype(np.int64)
    within = np.arange(rep.size) - term_start[rep]
    frac = within / n_dead[rep] if ties == "efron" else np.zeros(rep.size)
    extra_terms = np.flatnonzero(within > 0)  # 2nd, 3rd, ... event of a tied block
    extra_block = rep[extra_terms]
    extra_start = np.flatnonzero(np.diff(extra_block, prepend=-1) != 0)
    event_rows = np.flatnonzero(es > 0)
    # Efron corrections are needed only for blocks with tied events
    tied = np.flatnonzero(n_dead > 1) if ties == "efron" else np.zeros(0, dtype=np.int64)
    tied_rows = event_rows[np.isin(rep, tied)]
    tied_start = np.concatenate([[0], np.cumsum(n_dead[tied])[:-1]]).astype(np.int64)
    tied_pos = np.full(death_groups.size, -1)
    tied_pos[tied] = np.arange(tied.size)
    tied_terms = np.flatnonzero(frac > 0)
    # rows are in descending time, so the first death block at/after the row's block in sorted
    # order is the latest event time <= the row's time (if it is in the same stratum)
    nd = death_groups.size
    k = np.searchsorted(death_groups, group, side="left")
    same = k < nd
    same[same] = ss[group_start[death_groups[k[same]]]] == ss[same]
    row_cum_index = np.where(same, k, nd)
    truncation = {} if entry is None else _entry_index(ts, ss, entry[order], group_start,
                                                       death_groups)
    return CoxData(
        xt=xt,
        x_mean=x_mean,
        time=ts,
        event=es,
        weight=ws,
        stratum=ss,
        order=order,
        group=group,
        group_start=group_start,
        group_end=group_end,
        group_stratum=ss[group_start],
        death_groups=death_groups,
        death_group_of_row=dg_index[group],
        n_dead=n_dead,
        w_dead=w_dead,
        event_rows=event_rows,
        term_start=term_start,
        tied_rows=tied_rows,
        tied_start=tied_start,
        tied_terms=tied_terms,
        tied_term_block=tied_pos[rep[tied_terms]],
        no_ties=bool(rep.size == death_groups.size),
        extra_terms=extra_terms,
        extra_start=extra_start,
        extra_block=extra_block[extra_start],
        death_stratum=ss[group_start[death_groups]],
        row_cum_index=row_cum_index,
        rep=rep,
        frac=frac,
        multi_strata=np.unique(ss).size > 1,
        **truncation,
    )


def _entry_index(
    ts: np.ndarray, ss: np.ndarray, entry: np.ndarray, group_start: np.ndarray,
    death_groups: np.ndarray,
) -> dict[str, np.ndarray | None]:
    """Left-truncation bookkeeping from exact integer keys (stratum, rank of time descending).

    Keys sort like the rows (stratum ascending, time descending), so one searchsorted finds,
    per death block, the rows that entered at or after its time (not yet at risk) and, per
    row, the latest death block at or before its entry time.
    """
    uniq = np.unique(np.concatenate([ts, entry]))
    top = uniq.size
    ss64 = ss.astype(np.int64)

    def key(values: np.ndarray, strata: np.ndarray) -> np.ndarray:
        return strata * (top + 1) + (top - np.searchsorted(uniq, values))

    n, nd = ts.size, death_groups.size
    ekey = key(entry, ss64)
    perm = np.argsort(ekey, kind="stable")
    ekey_sorted, estrata = ekey[perm], ss64[perm]
    dstart = group_start[death_groups]
    dkey, dstrata = key(ts[dstart], ss64[dstart]), ss64[dstart]
    pos = np.searchsorted(ekey_sorted, dkey, side="right") - 1
    ok = pos >= 0
    ok[ok] = estrata[pos[ok]] == dstrata[ok]
    k = np.searchsorted(dkey, ekey, side="left")
    same = k < nd
    same[same] = dstrata[k[same]] == ss64[same]
    return {
        "entry": entry,
        "entry_perm": perm,
        "entry_segments": estrata if np.unique(ss64).size > 1 else None,
        "entry_pos": np.where(ok, pos, n),
        "entry_cum_index": np.where(same, k, nd),
    }


@dataclass
class EfronTerms:
    """Per-Efron-term quantities at a given beta (one term per event)."""

    eta: np.ndarray  # sorted-order linear predictor (centred x)
    risk: np.ndarray  # exp(eta - max eta)
    loglik: float
    score: np.ndarray
    d0: np.ndarray  # Efron denominators
    mean: np.ndarray  # (p, n_events) Efron-weighted covariate means
    term_wt: np.ndarray  # mean event weight of the term's block
    a: np.ndarray  # per death block: sum_dd meanwt / d0
    b: np.ndarray  # per death block: sum_dd meanwt * frac / d0


def efron_terms(data: CoxData, beta: np.ndarray) -> EfronTerms:
    """Log partial likelihood, score vector and Efron terms at `beta`."""
    xt = data.xt
    p, n = xt.shape
    eta = matvec(beta, xt)
    shift = eta.max() if n else 0.0
    risk = np.exp(eta - shift)
    wr = data.weight * risk
    stacked = np.empty((p + 1, n))
    stacked[0] = wr
    np.multiply(xt, wr, out=stacked[1:])
    # risk-set sums S0, S1 at each death block: everyone at or after its time in the stratum
    cum = segmented_cumsum(stacked, data.stratum if data.multi_strata else None)
    at_end = cum[:, data.group_end[data.death_groups]]
    del cum
    if data.entry_perm is not None:
        # left truncation: remove rows that enter at or after each death time
        cum = segmented_cumsum(stacked[:, data.entry_perm], data.entry_segments)
        cum = np.concatenate([cum, np.zeros((p + 1, 1))], axis=1)
        at_end -= cum[:, data.entry_pos]
        del cum
    rep, frac = data.rep, data.frac
    sums = at_end if data.no_ties else at_end[:, rep]
    if data.tied_terms.size:
        # Efron: remove the fraction dd/d of the block's own events from the risk set
        tied_sums = np.add.reduceat(stacked[:, data.tied_rows], data.tied_start, axis=1)
        k = data.tied_terms
        sums[:, k] -= frac[k] * tied_sums[:, data.tied_term_block]
    d0 = sums[0]
    mean = sums[1:] / d0
    term_wt = (data.w_dead / data.n_dead)[rep]
    ew = data.weight * data.event
    loglik = float(np.dot(ew, eta - shift) - np.dot(term_wt, np.log(d0)))
    score = rowdot(xt, ew) - rowdot(mean, term_wt)
    a = block_sum(data, term_wt / d0)
    b = block_sum(data, term_wt * frac / d0)
    return EfronTerms(eta, risk, loglik, score, d0, mean, term_wt, a, b)


def block_sum(data: CoxData, values: np.ndarray) -> np.ndarray:
    """Sum per-Efron-term values (last axis) within each death block."""
    if data.no_ties:
        return values
    out = values[..., data.term_start]
    if data.extra_terms.size:
        extra = np.add.reduceat(values[..., data.extra_terms], data.extra_start, axis=-1)
        out[..., data.extra_block] += extra
    return out


def _cumulate_to_rows(data: CoxData, per_death_group: np.ndarray) -> np.ndarray:
    """Sum of a per-death-block quantity (last axis) over the blocks at which each row is at
    risk: those at or before its time (and, with entry times, after its entry)."""
    seg = data.death_stratum[::-1] if data.multi_strata else None
    acc = segmented_cumsum(per_death_group[..., ::-1], seg)[..., ::-1]
    acc = np.concatenate([acc, np.zeros(acc.shape[:-1] + (1,))], axis=-1)
    if data.entry_cum_index is not None:
        return acc[..., data.row_cum_index] - acc[..., data.entry_cum_index]
    return acc[..., data.row_cum_index]


def information(
    data: CoxData, terms: EfronTerms, time_weight: np.ndarray | None = None
) -> np.ndarray:
    """Information matrix sum_j c_j I_j with per-death-block multipliers c (default 1).

    Uses sum_j c_j a_j S2(t_j) = X' diag(w r C(t_i)) X, so the cost is O(n p^2).
    """
    c = np.ones(data.death_groups.size) if time_weight is None else time_weight
    row_c = _cumulate_to_rows(data, c * terms.a)
    dg = data.death_group_of_row
    own = np.where(data.event > 0, (c * terms.b)[np.maximum(dg, 0)], 0.0)
    coef = data.weight * terms.risk * (row_c - own)
    first = gram(data.xt * coef, data.xt)
    tw = c[data.rep] * terms.term_wt
    second = gram(terms.mean * tw, terms.mean)
    info = first - second
    return (info + info.T) / 2.0


def score_residuals(data: CoxData, terms: EfronTerms) -> np.ndarray:
    """Per-row score residuals, shape (p, n) in sorted order, unweighted, as R's coxscore2.

    Efron-aware: a tied event shares the risk-set means of all Efron terms of its block.
    O(n p) via cumulative hazard-type sums instead of R's O(n^2) loop:
    resid_i = -r_i (x_i H1(t_i) - H2(t_i)) + delta_i (x_i - mbar + r_i (x_i e1 - e2)),
    with H the cumulative hazard (and hazard-weighted means) and e the Efron correction
    for the event's own block.
    """
    frac, m = data.frac, terms.mean
    haz = terms.term_wt / terms.d0
    h1 = terms.a
    h2 = block_sum(data, m * haz)
    dh = (1.0 - frac) * haz
    e1 = h1 - block_sum(data, dh)
    e2 = h2 - block_sum(data, m * dh)
    mbar = block_sum(data, m) / data.n_dead
    xt, risk = data.xt, terms.risk
    resid = xt * _cumulate_to_rows(data, h1)
    resid -= _cumulate_to_rows(data, h2)
    resid *= -risk
    ev = data.event_rows
    dg = data.death_group_of_row[ev]
    x_ev = xt[:, ev]
    if not data.no_ties:
        mbar, e1, e2 = mbar[:, dg], e1[dg], e2[:, dg]
    upd = x_ev * e1
    upd -= e2
    upd *= risk[ev]
    upd += x_ev
    upd -= mbar
    resid[:, ev] += upd
    return resid


def newton_raphson(
    data: CoxData, max_iter: int = 50, tol: float = 1e-10
) -> tuple[np.ndarray, EfronTerms, np.ndarray, EfronTerms, np.ndarray, int, bool]:
    """Maximise the partial likelihood from beta = 0, halving steps that lower it.

    Returns beta, terms and information at beta, the same at 0 (for the score test),
    iterations used and a convergence flag.
    """
    p = data.xt.shape[0]
    beta = np.zeros(p)
    terms = efron_terms(data, beta)
    info = information(data, terms)
    terms0, info0 = terms, info
    converged = False
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        step = np.linalg.solve(info, terms.score)
        new_terms = efron_terms(data, beta + step)
        slack = 1e-9 * max(1.0, abs(terms.loglik))  # ignore rounding-level decreases
        halvings = 0
        while halvings < 30 and not (new_terms.loglik >= terms.loglik - slack):
            step /= 2.0
            new_terms = efron_terms(data, beta + step)
            halvings += 1
        change = abs(new_terms.loglik - terms.loglik)
        beta, terms = beta + step, new_terms
        info = information(data, terms)
        if change <= tol * max(1.0, abs(terms.loglik)) or np.max(np.abs(step)) < 1e-9:
            converged = True
            break
    return beta, terms, info, terms0, info0, iterations, converged
