"""Harrell's concordance for right-censored data, as R survival::concordance, in O(n log^2 n)."""

from __future__ import annotations

import numpy as np

from ._util import ArrayLike, as_event, as_float, as_weights


def _sorted_search(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """np.searchsorted(side='left') with the needles sorted first (much more cache friendly)."""
    order = np.argsort(needles)
    out = np.empty(needles.size, dtype=np.int64)
    out[order] = np.searchsorted(haystack, needles[order], side="left")
    return out


def _prefix_rank_weight(
    pos_rank: np.ndarray, weights: np.ndarray | None, q_pos: np.ndarray, q_rank: np.ndarray
) -> np.ndarray:
    """For each query, total weight of rows at positions < q_pos with rank < q_rank.

    Offline 2-d dominance counting: [0, q_pos) is split into dyadic blocks (one per set bit of
    q_pos); within each level the rows are sorted by (block, rank) so each block count is a
    binary search. `pos_rank[i]` is the rank of the row at position i.
    """
    n = pos_rank.size
    n_rank = int(pos_rank.max()) + 2 if n else 1
    out = np.zeros(q_pos.size)
    pos = np.arange(n, dtype=np.int64)
    q_pos = q_pos.astype(np.int64)
    q_rank = q_rank.astype(np.int64)
    level = 0
    while (1 << level) <= n:
        active = np.flatnonzero((q_pos >> level) & 1)
        if active.size:
            keys = (pos >> level) * n_rank + pos_rank
            if weights is None:
                sorted_keys = np.sort(keys)
            else:
                order = np.argsort(keys)
                sorted_keys = keys[order]
                cum_w = np.concatenate([[0.0], np.cumsum(weights[order])])
            block = (q_pos[active] >> (level + 1)) << 1  # block index at this level
            hi = _sorted_search(sorted_keys, block * n_rank + q_rank[active])
            lo = block << level
            out[active] += (hi - lo) if weights is None else (cum_w[hi] - cum_w[lo])
        level += 1
    return out


def concordance_index(
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    strata: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> tuple[float, dict[str, float]]:
    """Concordance of a risk score (higher = earlier event) with survival, as R's concordance.

    A pair is comparable when the shorter time is an event; a subject censored at an event
    time counts as outliving it; pairs tied on an event time are ignored; ties in the score
    count 1/2. Pairs only within strata; with weights each pair counts w_i * w_j.
    Returns (C, counts) with counts concordant/discordant/tied_x.
    """
    t = as_float(time, "time")
    d = as_event(event, t.size).astype(bool)
    x = as_float(risk, "risk")
    w = None if weights is None else as_weights(weights, t.size)
    s = np.zeros(t.size, dtype=np.int64) if strata is None else np.asarray(strata, np.int64)
    _, rank = np.unique(x, return_inverse=True)
    n_rank = int(rank.max()) + 1
    # rank' = stratum * R + rank: rows of later strata never count as "lower" for a query
    rank2 = s * n_rank + rank
    order = np.lexsort((~d, t, s))  # stratum, time ascending, events before censorings
    ts, ds, ss, rs = t[order], d[order], s[order], rank2[order]
    ws = None if w is None else w[order]
    n = t.size
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    gid = np.cumsum(new_group) - 1
    g_start = np.flatnonzero(new_group)
    g_events = np.bincount(gid, weights=ds, minlength=g_start.size).astype(np.int64)
    ev = np.flatnonzero(ds)
    start = g_start[gid[ev]] + g_events[gid[ev]]  # first position after the tied events
    stratum_end = np.searchsorted(ss, ss[ev], side="right")
    v = rs[ev]
    # weight of rows with rank' < v anywhere (later strata are excluded by construction)
    rank_sorted = np.argsort(rs)
    srt = rs[rank_sorted]
    cw = np.concatenate([[0.0], np.cumsum(np.ones(n) if ws is None else ws[rank_sorted])])
    queries_pos = np.concatenate([start, start])
    queries_rank = np.concatenate([v, v + 1])
    total_below = cw[_sorted_search(srt, queries_rank)]
    before = _prefix_rank_weight(rs, ws, queries_pos, queries_rank)
    below = total_below - before  # weight in [start, stratum end) with rank' < query
    m = ev.size
    lt, le = below[:m], below[m:]
    if ws is None:
        risk_w = (stratum_end - start).astype(float)
        wi = np.ones(m)
    else:
        cpos = np.concatenate([[0.0], np.cumsum(ws)])
        risk_w = cpos[stratum_end] - cpos[start]
        wi = ws[ev]
    concordant = float(np.dot(wi, lt))
    tied = float(np.dot(wi, le - lt))
    discordant = float(np.dot(wi, risk_w - le))
    denom = concordant + discordant + tied
    c = (concordant + tied / 2.0) / denom if denom > 0 else np.nan
    return c, {"concordant": concordant, "discordant": discordant, "tied_x": tied}
