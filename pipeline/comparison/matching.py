"""Greedy nearest-neighbour matching on a score (usually the propensity logit).

Two entry points share one set of rules:

* `match_nearest` works from a table of *eligible pairs* (treated_id, control_id and
  both scores). This is the risk-set design: a candidate is eligible for a treated
  person only if they were eligible on that person's index date (same site, alive, not
  in custody, not yet referred), and the candidate's score is measured as of that date.
  Exact matching is expressed by which pairs are present.
* `match_from_groups` is the ordinary case (one row per person, optional exact strata): a
  thin adapter that builds the treated x control pairs of each stratum and calls
  `match_nearest`, so there is one implementation of the rules.

Rules:

* Distance = |score_treated - score_control|. A pair is admissible if its distance is
  <= caliper * SD (caliper given in SD units of the score; ``caliper=None`` disables).
  SD as MatchIt (``std.caliper=TRUE``): the sample SD (n-1) of the score over *all units*,
  treated and controls together (not a within-group pooled SD). For pairs the units are
  each treated person once plus each distinct (control_id, control score) row; pass
  `caliper_sd` to use an SD from the full cohort instead. Note that MatchIt applies the
  caliper to its distance, which is the propensity score itself unless
  ``link = "linear.logit"``; we default to the logit (Austin 2011's 0.2 SD rule).
* Treated people are processed in `order`: "largest" score first (MatchIt's default),
  "smallest", "data" (order of first appearance) or "random" (permutation with `seed`).
  Ties in the treated order are broken by smaller treated_id.
* Each treated person takes the nearest admissible control still available; equal
  distances are broken by the smaller control_id. With k > 1, matching proceeds in
  rounds as in MatchIt: every treated person gets a first control, then a second, ...
* Without replacement a control *person* (control_id) is used at most once, even if they
  appear in several risk sets with different scores. A person who later starts treatment
  may still serve as a control before their own index date (sequential-trial design).
* With replacement each treated person simply takes their k nearest admissible
  controls; order does not matter.

Unmatched treated people get a reason: "no eligible control" (no candidate at all),
"none within caliper" (candidates exist but all outside the caliper) or "pool exhausted"
(admissible controls existed but were all taken by earlier treated people).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "MatchResult",
    "match_from_groups",
    "match_nearest",
    "matching_weights",
]

Order = Literal["largest", "smallest", "data", "random"]

REASON_NO_ELIGIBLE = "no eligible control"
REASON_CALIPER = "none within caliper"
REASON_EXHAUSTED = "pool exhausted"


@dataclass(frozen=True)
class MatchResult:
    """Output of nearest-neighbour matching.

    `matches`: one row per (treated, control) match with matched_set (1, 2, ... in the
    order treated people were processed), treated_id, control_id, distance, rank (round
    in which the control was taken), set_weight (1 / controls in the set), the two
    scores, and any extra columns carried over from the pair table (e.g. index_date).
    `unmatched_treated`: treated_id and reason for treated people with no match.
    `counts`: summary numbers. `caliper_width` is on the score scale.
    """

    matches: pd.DataFrame
    unmatched_treated: pd.DataFrame
    counts: dict[str, int]
    caliper_width: float | None
    caliper_sd: float | None
    k: int
    replace: bool
    partially_matched: pd.DataFrame = field(default_factory=pd.DataFrame)

    def weights(self, normalize: bool = True) -> pd.DataFrame:
        """Matching weights per person and role (see `matching_weights`)."""
        return matching_weights(self.matches, normalize=normalize)


def matching_weights(matches: pd.DataFrame, *, normalize: bool = True) -> pd.DataFrame:
    """ATT matching weights from a matches table (1:k, with or without replacement).

    Each matched treated person gets 1; each control gets 1/k_s for every matched set s
    it belongs to (k_s = controls actually in that set), summed across sets. With
    `normalize` the control weights are rescaled to sum to the number of distinct
    matched controls, as MatchIt does. Returns columns id, role ("treated"/"control"),
    weight. Roles are kept separate because in a risk-set design the same person can be
    a control (before their referral) and later treated.
    """
    if matches.empty:
        return pd.DataFrame({"id": [], "role": [], "weight": []})
    size = matches.groupby("matched_set")["control_id"].transform("size").to_numpy()
    ctrl = (
        pd.DataFrame({"id": matches["control_id"].to_numpy(), "weight": 1.0 / size})
        .groupby("id", sort=True)["weight"]
        .sum()
    )
    if normalize:
        ctrl = ctrl * len(ctrl) / ctrl.sum()
    trt = pd.Series(1.0, index=pd.Index(pd.unique(matches["treated_id"])))
    out = pd.concat(
        [
            pd.DataFrame({"id": trt.index, "role": "treated", "weight": trt.to_numpy()}),
            pd.DataFrame({"id": ctrl.index, "role": "control", "weight": ctrl.to_numpy()}),
        ],
        ignore_index=True,
    )
    return out


# --------------------------------------------------------------------------- helpers


def _check_common(k: int, caliper: float | None, order: str) -> None:
    if int(k) != k or k < 1:
        raise ValueError("k must be a positive integer")
    if caliper is not None and not caliper > 0:
        raise ValueError("caliper must be positive (or None)")
    if order not in ("largest", "smallest", "data", "random"):
        raise ValueError(f"unknown order {order!r}")


def _treated_sequence(
    t_scores: np.ndarray, t_sortkey: np.ndarray, order: str, seed: int
) -> np.ndarray:
    """Processing order of treated people (indices into the treated arrays).

    `t_sortkey` ranks treated ids (0 = smallest id); arrays are in data order.
    """
    n = len(t_scores)
    if order == "largest":
        return np.lexsort((t_sortkey, -t_scores))
    if order == "smallest":
        return np.lexsort((t_sortkey, t_scores))
    if order == "data":
        return np.arange(n)
    by_id = np.argsort(t_sortkey, kind="stable")
    return by_id[np.random.default_rng(seed).permutation(n)]


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def _first_free(cand: np.ndarray, used: np.ndarray) -> int:
    """Index of the first not-yet-used control in `cand` (-1 if none); chunked scan."""
    n = len(cand)
    start = 0
    step = 16
    while start < n:
        stop = min(n, start + step)
        free = ~used[cand[start:stop]]
        j = int(np.argmax(free))
        if free[j]:
            return start + j
        start = stop
        step *= 8
    return -1


def _result(
    matches: pd.DataFrame,
    all_treated: pd.Series,
    reason_of: dict[Hashable, str],
    n_per_treated: pd.Series,
    k: int,
    replace: bool,
    width: float | None,
    sd: float | None,
) -> MatchResult:
    unmatched = pd.DataFrame({"treated_id": list(reason_of), "reason": list(reason_of.values())})
    partial = n_per_treated[(n_per_treated > 0) & (n_per_treated < k)]
    partially = pd.DataFrame({"treated_id": partial.index, "n_controls": partial.to_numpy()})
    reasons = unmatched["reason"].value_counts()
    counts = {
        "n_treated": int(len(all_treated)),
        "n_treated_matched": int((n_per_treated > 0).sum()),
        "n_treated_unmatched": int(len(unmatched)),
        "n_treated_partial": int(len(partially)),
        "n_matches": int(len(matches)),
        "n_controls_used": int(matches["control_id"].nunique()) if len(matches) else 0,
        "n_no_eligible_control": int(reasons.get(REASON_NO_ELIGIBLE, 0)),
        "n_none_within_caliper": int(reasons.get(REASON_CALIPER, 0)),
        "n_pool_exhausted": int(reasons.get(REASON_EXHAUSTED, 0)),
    }
    return MatchResult(matches, unmatched, counts, width, sd, k, replace, partially)


def _finish_matches(m: pd.DataFrame, seq_rank: np.ndarray) -> pd.DataFrame:
    """Add matched_set (processing order), set_weight; sort by set and rank."""
    if m.empty:
        m = m.assign(matched_set=pd.Series(dtype="int64"), set_weight=pd.Series(dtype=float))
    else:
        codes, _ = pd.factorize(seq_rank, sort=True)
        m = m.assign(matched_set=codes + 1)
        size = m.groupby("matched_set")["control_id"].transform("size")
        m = m.assign(set_weight=1.0 / size)
    m = m.sort_values(["matched_set", "rank"], kind="stable").reset_index(drop=True)
    first = ["matched_set", "treated_id", "control_id", "distance", "rank", "set_weight"]
    return m[first + [c for c in m.columns if c not in first]]


# --------------------------------------------------------------------------- pairs


def match_nearest(
    pairs: pd.DataFrame,
    *,
    k: int = 1,
    caliper: float | None = 0.2,
    replace: bool = False,
    order: Order = "largest",
    seed: int = 0,
    caliper_sd: float | None = None,
    treated_ids: Sequence[Hashable] | None = None,
    treated_score_col: str = "treated_logit",
    control_score_col: str = "control_logit",
) -> MatchResult:
    """Greedy 1:k nearest-neighbour matching from a table of eligible pairs.

    `pairs` needs columns treated_id, control_id, `treated_score_col`,
    `control_score_col` (default the propensity logits); each (treated_id, control_id)
    at most once, and one score per treated_id. Extra columns (index date, site,
    covariates as of the date) are carried into `matches`. `treated_ids` lists every
    treated person so that those without any eligible pair are reported. See the
    module docstring for the exact rules (caliper SD, order, ties, rounds).

    Cost: one sort of the pair table plus, without replacement, one short vectorised
    scan per treated person and round (no Python loop over pairs).
    """
    _check_common(k, caliper, order)
    need = ["treated_id", "control_id", treated_score_col, control_score_col]
    missing = [c for c in need if c not in pairs.columns]
    if missing:
        raise KeyError(f"pairs lacks columns {missing}")
    ts_all = pairs[treated_score_col].to_numpy(dtype=float)
    cs_all = pairs[control_score_col].to_numpy(dtype=float)
    if np.isnan(ts_all).any() or np.isnan(cs_all).any():
        raise ValueError("missing scores in pairs")

    # Treated people: data order of first appearance (then any only in treated_ids).
    t_codes, t_uniq = pd.factorize(pairs["treated_id"], sort=False)
    c_codes_all, c_uniq = pd.factorize(pairs["control_id"], sort=True)  # code order = id order
    key = np.sort(t_codes.astype(np.int64) * len(c_uniq) + c_codes_all)
    if len(key) > 1 and np.any(key[1:] == key[:-1]):
        raise ValueError("duplicate (treated_id, control_id) pairs")
    first_row = np.full(len(t_uniq), -1)
    first_row[t_codes[::-1]] = np.arange(len(t_codes))[::-1]
    t_score = ts_all[first_row]
    if len(pairs) and np.any(ts_all != t_score[t_codes]):
        raise ValueError(f"{treated_score_col} must be constant within treated_id")
    all_treated = pd.Series(t_uniq)
    if treated_ids is not None:
        extra = pd.Index(pd.unique(pd.Series(list(treated_ids))))
        extra = extra[~extra.isin(t_uniq)]
        all_treated = pd.concat([all_treated, pd.Series(extra)], ignore_index=True)

    # Caliper width on the score scale.
    width = None
    sd = caliper_sd
    if caliper is not None:
        if sd is None:
            srt_c = np.lexsort((cs_all, c_codes_all))
            c_sorted, s_sorted = c_codes_all[srt_c], cs_all[srt_c]
            first = np.ones(len(srt_c), dtype=bool)
            first[1:] = (c_sorted[1:] != c_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])
            sd = _sd(np.concatenate([t_score, s_sorted[first]]))
        width = float(caliper * sd)

    dist_all = np.abs(ts_all - cs_all)
    ok = dist_all <= width if width is not None else np.ones(len(pairs), dtype=bool)

    # Processing order over all treated (those without pairs have no score: sorted last).
    all_score = np.concatenate([t_score, np.full(len(all_treated) - len(t_uniq), np.nan)])
    all_key = all_treated.rank(method="first").to_numpy()
    seq = _treated_sequence(all_score, all_key, order, seed)
    seq_rank = np.empty(len(seq), dtype=np.int64)
    seq_rank[seq] = np.arange(len(seq))

    rows = np.flatnonzero(ok)
    pr = seq_rank[t_codes[rows]]
    cc = c_codes_all[rows]
    dd = dist_all[rows]
    srt = np.lexsort((cc, dd, pr))
    rows, pr, cc = rows[srt], pr[srt], cc[srt]
    bounds = np.searchsorted(pr, np.arange(len(seq) + 1), side="left")

    if replace:
        start_of = bounds[pr]
        within = np.arange(len(pr)) - start_of
        take = within < k
        chosen_rows, chosen_rank = rows[take], within[take] + 1
        chosen_seq = pr[take]
    else:
        used = np.zeros(len(c_uniq), dtype=bool)
        ptr = bounds[:-1].copy()
        chosen_rows_l: list[int] = []
        chosen_rank_l: list[int] = []
        chosen_seq_l: list[int] = []
        for r in range(k):
            for p in range(len(seq)):
                s, e = ptr[p], bounds[p + 1]
                if s >= e:
                    continue
                j = _first_free(cc[s:e], used)
                if j < 0:
                    ptr[p] = e
                    continue
                pos = s + j
                used[cc[pos]] = True
                ptr[p] = pos + 1
                chosen_rows_l.append(rows[pos])
                chosen_rank_l.append(r + 1)
                chosen_seq_l.append(p)
        chosen_rows = np.asarray(chosen_rows_l, dtype=np.int64)
        chosen_rank = np.asarray(chosen_rank_l, dtype=np.int64)
        chosen_seq = np.asarray(chosen_seq_l, dtype=np.int64)

    m = pairs.iloc[chosen_rows].reset_index(drop=True)
    m = m.assign(distance=dist_all[chosen_rows], rank=chosen_rank)
    m = _finish_matches(m, chosen_seq)

    n_per = pd.Series(0, index=pd.Index(all_treated))
    got = m["treated_id"].value_counts()
    n_per.loc[got.index] = got.to_numpy()
    has_pair = pd.Index(t_uniq)
    has_ok = pd.Index(t_uniq[np.unique(t_codes[ok])]) if ok.any() else pd.Index([])
    reason_of: dict[Hashable, str] = {}
    for tid in all_treated[(n_per == 0).to_numpy()]:
        if tid not in has_pair:
            reason_of[tid] = REASON_NO_ELIGIBLE
        elif tid not in has_ok:
            reason_of[tid] = REASON_CALIPER
        else:
            reason_of[tid] = REASON_EXHAUSTED
    return _result(m, all_treated, reason_of, n_per, k, replace, width, sd)


# --------------------------------------------------------------------------- groups


def match_from_groups(
    df: pd.DataFrame,
    id_col: str,
    treated_col: str,
    logit_col: str,
    exact: str | Sequence[str] | None = None,
    *,
    k: int = 1,
    caliper: float | None = 0.2,
    replace: bool = False,
    order: Order = "largest",
    seed: int = 0,
    caliper_sd: float | None = None,
) -> MatchResult:
    """Nearest-neighbour matching for one row per person, within optional exact strata.

    A thin adapter over `match_nearest` (one implementation of the rules): the eligible
    pairs are every treated x control pair of the same `exact` stratum, with the caliper SD
    taken over all rows (MatchIt). The pair table grows as treated x controls per stratum, so
    this is for ordinary, modest data (reference checks, notebooks); the pipeline matches
    within its bounded risk sets.
    """
    _check_common(k, caliper, order)
    for c in (id_col, treated_col, logit_col):
        if c not in df.columns:
            raise KeyError(f"df lacks column {c!r}")
    if df[id_col].duplicated().any():
        raise ValueError(f"{id_col!r} must be unique")
    score = df[logit_col].to_numpy(dtype=float)
    if np.isnan(score).any():
        raise ValueError("missing scores")
    cols = [] if exact is None else ([exact] if isinstance(exact, str) else list(exact))
    stratum = (df.groupby(cols, sort=True, dropna=False).ngroup().to_numpy()
               if cols else np.zeros(len(df), dtype=np.int64))
    t = df[treated_col].to_numpy().astype(bool)
    people = pd.DataFrame({"id": df[id_col].to_numpy(), "score": score, "stratum": stratum})
    pairs = people[t].merge(people[~t], on="stratum", suffixes=("_t", "_c"))
    pairs = pd.DataFrame({"treated_id": pairs["id_t"], "control_id": pairs["id_c"],
                          "treated_logit": pairs["score_t"],
                          "control_logit": pairs["score_c"]})
    sd = caliper_sd if caliper_sd is not None else _sd(score)
    return match_nearest(pairs, k=k, caliper=caliper, replace=replace, order=order,
                         seed=seed, caliper_sd=sd if caliper is not None else None,
                         treated_ids=list(people.loc[t, "id"]))


def _count_per_treated(matches: pd.DataFrame, tid: np.ndarray) -> pd.Series:
    n = pd.Series(0, index=pd.Index(tid))
    got = matches["treated_id"].value_counts()
    n.loc[got.index] = got.to_numpy()
    return n
