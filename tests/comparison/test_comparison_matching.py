"""Hand-made checks of greedy nearest-neighbour matching (pairs and ordinary variants)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.comparison import match_from_groups, match_nearest, matching_weights


def _pairs(treated: dict, controls: dict, eligible=None) -> pd.DataFrame:
    """Pair table from {id: score} dicts; `eligible` = list of (t, c) or None for all."""
    rows = [
        (t, c, ts, cs)
        for t, ts in treated.items()
        for c, cs in controls.items()
        if eligible is None or (t, c) in eligible
    ]
    return pd.DataFrame(
        rows, columns=["treated_id", "control_id", "treated_logit", "control_logit"]
    )


def _as_set(res) -> set[tuple]:
    return set(map(tuple, res.matches[["treated_id", "control_id"]].to_numpy().tolist()))


def test_caliper_excludes_far_controls():
    pairs = _pairs({1: 0.0, 2: 5.0}, {10: 0.05, 11: 0.3})
    res = match_nearest(pairs, caliper=0.5, caliper_sd=1.0)  # width 0.5 on the logit
    assert res.caliper_width == pytest.approx(0.5)
    assert _as_set(res) == {(1, 10)}
    assert res.unmatched_treated.to_dict("records") == [
        {"treated_id": 2, "reason": "none within caliper"}
    ]
    # Without the caliper treated 2 gets the only remaining control.
    assert _as_set(match_nearest(pairs, caliper=None)) == {(1, 10), (2, 11)}


def test_boundary_distance_equal_to_caliper_is_admissible():
    pairs = _pairs({1: 0.0}, {10: 0.5})
    assert len(match_nearest(pairs, caliper=0.5, caliper_sd=1.0).matches) == 1
    assert len(match_nearest(pairs, caliper=0.49, caliper_sd=1.0).matches) == 0


def test_default_caliper_sd_is_sd_over_all_units():
    # MatchIt (std.caliper = TRUE): sd(distance) over treated and controls together.
    df = pd.DataFrame(
        {"id": range(6), "t": [1, 1, 0, 0, 0, 0], "s": [0.0, 1.0, 0.1, 0.7, 2.0, 3.0]}
    )
    res = match_from_groups(df, "id", "t", "s", caliper=0.2)
    assert res.caliper_sd == pytest.approx(np.std(df["s"], ddof=1))
    assert res.caliper_width == pytest.approx(0.2 * np.std(df["s"], ddof=1))
    # Pair variant: each treated once + each distinct control score once.
    pairs = _pairs({0: 0.0, 1: 1.0}, {2: 0.1, 3: 0.7, 4: 2.0, 5: 3.0})
    assert match_nearest(pairs).caliper_sd == pytest.approx(np.std(df["s"], ddof=1))


def test_no_reuse_without_replacement_and_greedy_order():
    # Both treated prefer control 10; "largest" processes treated 2 (score 1.0) first.
    pairs = _pairs({1: 0.9, 2: 1.0}, {10: 0.95, 11: 0.5})
    res = match_nearest(pairs, caliper=None, order="largest")
    assert _as_set(res) == {(2, 10), (1, 11)}
    assert res.matches["control_id"].is_unique
    assert res.matches.loc[res.matches["treated_id"] == 2, "matched_set"].item() == 1
    res_small = match_nearest(pairs, caliper=None, order="smallest")
    assert _as_set(res_small) == {(1, 10), (2, 11)}
    # With replacement both take control 10.
    res_rep = match_nearest(pairs, caliper=None, replace=True)
    assert _as_set(res_rep) == {(1, 10), (2, 10)}


def test_pool_exhausted_reason():
    pairs = _pairs({1: 0.9, 2: 1.0}, {10: 0.95})
    res = match_nearest(pairs, caliper=None)
    assert res.unmatched_treated.to_dict("records") == [
        {"treated_id": 1, "reason": "pool exhausted"}
    ]
    assert res.counts["n_pool_exhausted"] == 1


def test_no_eligible_control_reason_needs_treated_ids():
    pairs = _pairs({1: 0.0}, {10: 0.1})
    res = match_nearest(pairs, treated_ids=[1, 2], caliper=None)
    assert res.unmatched_treated.to_dict("records") == [
        {"treated_id": 2, "reason": "no eligible control"}
    ]
    assert res.counts["n_treated"] == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tie_breaking_smaller_control_id_whatever_row_order(seed):
    # Controls 30 and 20 are exactly equidistant on either side (binary fractions);
    # 40 and 50 share a score.
    pairs = _pairs({1: 1.0, 2: 3.0}, {30: 0.75, 20: 1.25, 50: 2.5, 40: 2.5})
    shuffled = pairs.sample(frac=1.0, random_state=seed)
    res = match_nearest(shuffled, caliper=None)
    assert _as_set(res) == {(1, 20), (2, 40)}
    # Same rule in the ordinary (sorted-array) implementation.
    df = pd.DataFrame(
        {
            "id": [1, 2, 30, 20, 50, 40],
            "t": [1, 1, 0, 0, 0, 0],
            "s": [1.0, 3.0, 0.75, 1.25, 2.5, 2.5],
        }
    ).sample(frac=1.0, random_state=seed)
    assert _as_set(match_from_groups(df, "id", "t", "s", caliper=None)) == {(1, 20), (2, 40)}


def test_tied_treated_scores_processed_by_smaller_treated_id():
    pairs = _pairs({7: 1.0, 3: 1.0}, {10: 1.0, 11: 0.0})
    res = match_nearest(pairs, caliper=None)
    assert _as_set(res) == {(3, 10), (7, 11)}


def test_risk_set_pairs_respected_and_person_used_once():
    # Control 10 is closest to both treated but only eligible for treated 1 (risk set);
    # control 11 appears in both risk sets with different scores (measured on each
    # index date) and may be used only once.
    pairs = pd.DataFrame(
        {
            "treated_id": [1, 1, 2, 2],
            "control_id": [10, 11, 11, 12],
            "treated_logit": [0.0, 0.0, 1.0, 1.0],
            "control_logit": [0.01, 0.02, 1.01, 1.5],
            "index_date": pd.to_datetime(["2020-01-01"] * 2 + ["2021-06-01"] * 2),
        }
    )
    res = match_nearest(pairs, caliper=None, order="smallest")
    assert _as_set(res) == {(1, 10), (2, 11)}
    # Person 11 is eligible for treated 1 too; if 10 were gone, treated 1 would take 11
    # and treated 2 then falls back to 12 (11 used once only).
    res2 = match_nearest(pairs[pairs["control_id"] != 10], caliper=None, order="smallest")
    assert _as_set(res2) == {(1, 11), (2, 12)}
    # The matched control takes the treated person's index date (carried from the pair).
    m = res.matches.set_index("control_id")
    assert m.loc[11, "index_date"] == pd.Timestamp("2021-06-01")
    assert m.loc[11, "control_logit"] == pytest.approx(1.01)
    with pytest.raises(ValueError, match="duplicate"):
        match_nearest(pd.concat([pairs, pairs.iloc[:1]]))
    bad = pairs.copy()
    bad.loc[0, "treated_logit"] = 9.0
    with pytest.raises(ValueError, match="constant"):
        match_nearest(bad)


def test_k2_rounds_like_matchit():
    # Round 1: A (largest) takes c1, B takes c2; round 2: A takes c3, B takes c4.
    # (Taking k at once would give A {c1, c2} and B {c3, c4}.)
    treated = {"A": 1.0, "B": 0.9}
    controls = {"c1": 1.02, "c2": 0.93, "c3": 0.8, "c4": 1.3}
    res = match_nearest(_pairs(treated, controls), k=2, caliper=None)
    assert _as_set(res) == {("A", "c1"), ("A", "c3"), ("B", "c2"), ("B", "c4")}
    ranks = res.matches.set_index("control_id")["rank"].to_dict()
    assert ranks == {"c1": 1, "c2": 1, "c3": 2, "c4": 2}
    assert (res.matches["set_weight"] == 0.5).all()
    df = pd.DataFrame(
        {
            "id": [*treated, *controls],
            "t": [1, 1, 0, 0, 0, 0],
            "s": [*treated.values(), *controls.values()],
        }
    )
    assert _as_set(match_from_groups(df, "id", "t", "s", k=2, caliper=None)) == _as_set(res)


def test_k2_partial_sets_and_weights():
    # Treated 2 finds only one admissible control: partial set, weight 1 for it.
    pairs = _pairs({1: 0.0, 2: 5.0}, {10: 0.1, 11: -0.1, 12: 5.1, 13: 9.0})
    res = match_nearest(pairs, k=2, caliper=0.5, caliper_sd=1.0)
    assert _as_set(res) == {(1, 10), (1, 11), (2, 12)}
    assert res.partially_matched.to_dict("records") == [{"treated_id": 2, "n_controls": 1}]
    w = matching_weights(res.matches, normalize=False).set_index(["role", "id"])["weight"]
    assert w[("control", 10)] == 0.5 and w[("control", 12)] == 1.0
    assert w[("treated", 1)] == 1.0 and w[("treated", 2)] == 1.0
    wn = res.weights().set_index(["role", "id"])["weight"]
    # MatchIt normalisation: control weights sum to the number of matched controls.
    assert wn.loc["control"].sum() == pytest.approx(3.0)
    assert wn[("control", 12)] == pytest.approx(1.0 * 3 / 2.0)


def test_weights_with_replacement_sum_across_sets():
    pairs = _pairs({1: 0.0, 2: 0.1, 3: 0.2}, {10: 0.1, 11: 5.0})
    res = match_nearest(pairs, caliper=None, replace=True)
    assert set(res.matches["control_id"]) == {10}
    w = matching_weights(res.matches, normalize=False)
    assert w.loc[w["role"] == "control", "weight"].tolist() == [3.0]
    # Same person as control (before referral) and later treated: roles kept apart.
    both = pd.DataFrame({"matched_set": [1, 2], "treated_id": [1, 10], "control_id": [10, 11]})
    wb = matching_weights(both, normalize=False)
    assert ((wb["id"] == 10) & (wb["role"] == "treated")).sum() == 1
    assert ((wb["id"] == 10) & (wb["role"] == "control")).sum() == 1


def test_random_order_deterministic_given_seed():
    rng = np.random.default_rng(5)
    pairs = _pairs({i: rng.normal() for i in range(30)}, {100 + j: rng.normal() for j in range(35)})
    a = match_nearest(pairs, order="random", seed=3, caliper=None).matches
    b = match_nearest(
        pairs.sample(frac=1.0, random_state=1), order="random", seed=3, caliper=None
    ).matches
    pd.testing.assert_frame_equal(
        a[["matched_set", "treated_id", "control_id"]],
        b[["matched_set", "treated_id", "control_id"]],
    )
    c = match_nearest(pairs, order="random", seed=4, caliper=None).matches
    assert a["treated_id"].tolist() != c["treated_id"].tolist()


def _brute_force(df, k, width, replace, exact):
    """Plain greedy over all treated x control pairs (largest score first)."""
    t = df[df.t == 1].sort_values(["s", "id"], ascending=[False, True])
    c = df[df.t == 0]
    used: set = set()
    got: dict = {i: [] for i in t.id}
    for r in range(k):
        for _, row in t.iterrows():
            if r > 0 and len(got[row.id]) < r:
                continue
            cand = c if exact is None else c[c[exact] == row[exact]]
            cand = cand[~cand.id.isin(got[row.id])]
            if not replace:
                cand = cand[~cand.id.isin(used)]
            d = (cand.s - row.s).abs()
            cand = cand.assign(d=d)[d <= width].sort_values(["d", "id"])
            if len(cand):
                cid = cand.id.iloc[0]
                got[row.id].append(cid)
                used.add(cid)
    return {(ti, ci) for ti, cs in got.items() for ci in cs}


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_greedy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(15, 40))
    df = pd.DataFrame(
        {
            "id": rng.permutation(500)[:n],
            "t": (rng.random(n) < 0.35).astype(int),
            "s": np.round(rng.normal(size=n), 1),  # rounding creates ties
            "g": rng.integers(0, 2, n),
        }
    )
    if df.t.sum() == 0:
        df.loc[0, "t"] = 1
    k = 1 + seed % 3
    replace = seed % 2 == 1
    exact = "g" if seed % 4 < 2 else None
    sd = float(np.std(df.s, ddof=1))
    caliper = 0.3 if seed % 3 else None
    width = np.inf if caliper is None else caliper * sd
    expected = _brute_force(df, k, width, replace, exact)
    got = match_from_groups(df, "id", "t", "s", exact=exact, k=k, caliper=caliper, replace=replace)
    assert _as_set(got) == expected
    t, c = df[df.t == 1], df[df.t == 0]
    on = ["g"] if exact else None
    p = (
        t.merge(c, on=on, suffixes=("_t", "_c"))
        if on
        else t.merge(c, how="cross", suffixes=("_t", "_c"))
    )
    p = p.rename(
        columns={
            "id_t": "treated_id",
            "id_c": "control_id",
            "s_t": "treated_logit",
            "s_c": "control_logit",
        }
    )
    got_p = match_nearest(p, k=k, caliper=caliper, caliper_sd=sd, replace=replace)
    assert _as_set(got_p) == expected


def test_exact_strata_in_ordinary_matching():
    df = pd.DataFrame(
        {
            "id": [1, 2, 10, 11],
            "t": [1, 1, 0, 0],
            "s": [0.0, 0.0, 0.0, 3.0],
            "site": ["a", "b", "b", "a"],
        }
    )
    res = match_from_groups(df, "id", "t", "s", exact="site", caliper=None)
    assert _as_set(res) == {(1, 11), (2, 10)}
    df2 = df.assign(site=["a", "c", "b", "a"])
    res2 = match_from_groups(df2, "id", "t", "s", exact="site", caliper=None)
    assert res2.unmatched_treated.to_dict("records") == [
        {"treated_id": 2, "reason": "no eligible control"}
    ]


def test_bad_arguments():
    pairs = _pairs({1: 0.0}, {10: 0.1})
    with pytest.raises(ValueError):
        match_nearest(pairs, k=0)
    with pytest.raises(ValueError):
        match_nearest(pairs, order="best")
    with pytest.raises(KeyError):
        match_nearest(pairs.drop(columns="control_logit"))
