"""Property tests: a differencing attacker on hundreds of random protected tables."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from disclosure_attacker import interval_attack, lp_pinned, read_published, subtraction_attack

from pipeline.disclosure import DisclosurePolicy, ProtectedTable, protect_table
from pipeline.disclosure import tables as tables_module

POLICIES = [
    DisclosurePolicy(),
    DisclosurePolicy(suppress_zeros=True),
    DisclosurePolicy(threshold=5),
    DisclosurePolicy(rounding_base=5),
    DisclosurePolicy(suppress_zeros=True, rounding_base=10),
]
N_TABLES = 400


def random_table(rng: np.random.Generator) -> pd.DataFrame:
    """A 1-5 x 1-5 table mixing zeros, small and large counts in random proportions."""
    n_rows, n_cols = rng.integers(1, 6, size=2)
    p_zero, p_small = rng.uniform(0, 0.3), rng.uniform(0.05, 0.6)
    u = rng.random((n_rows, n_cols))
    small = rng.integers(1, 10, (n_rows, n_cols))
    large = rng.integers(10, 150, (n_rows, n_cols))
    counts = np.where(u < p_zero, 0, np.where(u < p_zero + p_small, small, large))
    return pd.DataFrame(
        counts, index=[f"r{i}" for i in range(n_rows)], columns=[f"c{j}" for j in range(n_cols)]
    )


def true_augmented(table: pd.DataFrame) -> np.ndarray:
    """The table with the same totals the library should add (no duplicate single-line total)."""
    aug = table.to_numpy()
    if aug.shape[1] > 1:
        aug = np.column_stack([aug, aug.sum(axis=1)])
    if aug.shape[0] > 1:
        aug = np.vstack([aug, aug.sum(axis=0)])
    return aug


@cache
def cases() -> tuple[tuple[pd.DataFrame, DisclosurePolicy, ProtectedTable, np.ndarray], ...]:
    """Seeded random tables, each protected under one of the policies."""
    rng = np.random.default_rng(20240611)
    out = []
    for n in range(N_TABLES):
        table = random_table(rng)
        policy = POLICIES[n % len(POLICIES)]
        out.append((table, policy, protect_table(table, policy), true_augmented(table)))
    return tuple(out)


def knowledge(result: ProtectedTable, policy: DisclosurePolicy, truth: np.ndarray, labels=True):
    """Attacker input; with rounding the attacker is handed the unrounded published values."""
    exact = truth if policy.rounding_base is not None else None
    return read_published(result.published, policy, use_labels=labels, truth=exact)


def primary_cells(result: ProtectedTable) -> np.ndarray:
    return np.flatnonzero(result.primary.to_numpy().ravel())


def test_random_tables_cover_the_hard_cases():
    """Guard against a vacuous property test: the sample must contain what we claim to test."""
    all_cases = cases()
    n_primary = sum(len(primary_cells(r)) for _, _, r, _ in all_cases)
    n_secondary = sum(int(r.secondary.to_numpy().sum()) for _, _, r, _ in all_cases)
    suppressed_totals = sum(
        bool(r.primary.to_numpy()[-1, :].any() or r.primary.to_numpy()[:, -1].any())
        for t, _, r, _ in all_cases
        if t.shape[0] > 1 and t.shape[1] > 1
    )
    one_line = sum(1 for t, _, _, _ in all_cases if 1 in t.shape)
    assert n_primary > 1000 and n_secondary > 500
    assert suppressed_totals > 50 and one_line > 50


def test_subtraction_attack_recovers_no_primary_cell():
    for table, policy, result, truth in cases():
        k = knowledge(result, policy, truth, labels=False)
        recovered = subtraction_attack(k)
        flat = truth.ravel()
        for cell, value in recovered.items():  # the attacker is sound ...
            assert value == flat[cell]
        leaked = set(recovered) & set(primary_cells(result))  # ... and learns nothing small
        assert not leaked, (table, policy, result.published)


@pytest.mark.parametrize("labels", [False, True], ids=["non-negativity", "label-bounds"])
def test_interval_attack_pins_no_primary_cell(labels):
    for table, policy, result, truth in cases():
        lo, hi = interval_attack(knowledge(result, policy, truth, labels=labels))
        flat = truth.ravel()
        assert np.all(lo <= flat) and np.all(flat <= hi)
        cells = primary_cells(result)
        assert not np.any(lo[cells] == hi[cells]), (table, policy, result.published)


def test_linear_programming_attack_pins_no_primary_cell():
    """Strongest attacker: exact LP bounds using all relations, non-negativity and label bounds."""
    for table, policy, result, truth in cases():
        pinned = lp_pinned(knowledge(result, policy, truth), primary_cells(result), truth.ravel())
        assert not pinned, (table, policy, result.published, pinned)


def test_every_additive_line_has_zero_or_at_least_two_suppressed_cells():
    for _, _, result, _ in cases():
        sup = result.suppressed.to_numpy()
        per_line = []
        if result.published.columns[-1] == "Total":
            per_line += list(sup.sum(axis=1))
        if result.published.index[-1] == "Total":
            per_line += list(sup.sum(axis=0))
        assert 1 not in per_line


def test_primary_mask_and_labels_follow_the_policy():
    for _, policy, result, truth in cases():
        low = 0 if policy.suppress_zeros else 1
        expected_primary = (truth >= low) & (truth < policy.threshold)
        np.testing.assert_array_equal(result.primary.to_numpy(), expected_primary)
        text = result.published.to_numpy()
        sup = result.suppressed.to_numpy()
        assert np.all(text[expected_primary] == policy.suppressed_label)
        assert np.all(text[sup & ~expected_primary] == policy.secondary_label)
        assert np.all(truth[sup & ~expected_primary] >= policy.threshold)  # zeros never complements
        np.testing.assert_array_equal(np.isnan(result.values.to_numpy()), sup)


def test_published_cells_and_totals_equal_the_truth_without_rounding():
    checked = 0
    for table, policy, result, truth in cases():
        if policy.rounding_base is not None:
            continue
        assert list(result.published.index[: len(table)]) == list(table.index)
        shown = ~result.suppressed.to_numpy()
        text = result.published.to_numpy()[shown]
        assert [int(t.replace(",", "")) for t in text] == list(truth[shown])
        np.testing.assert_array_equal(result.values.to_numpy()[shown], truth[shown])
        checked += 1
    assert checked > 200


def test_rounding_is_applied_to_every_published_cell_and_total():
    checked = 0
    for _, policy, result, truth in cases():
        base = policy.rounding_base
        if base is None:
            continue
        shown = ~result.suppressed.to_numpy()
        published = np.array([int(t.replace(",", "")) for t in result.published.to_numpy()[shown]])
        assert np.all(published % base == 0)
        assert np.all(np.abs(published - truth[shown]) <= base / 2)
        np.testing.assert_array_equal(result.values.to_numpy()[shown], published)
        checked += int(shown.sum())
    assert checked > 500


def test_attackers_break_tables_with_primary_suppression_only():
    """The attack is not vacuous: without complementary suppression it recovers small cells."""
    broken = 0
    for _, policy, result, truth in cases():
        text = result.published.to_numpy().copy()
        secondary = result.secondary.to_numpy()
        text[secondary] = [f"{v:,}" for v in truth[secondary]]
        published = pd.DataFrame(
            text, index=result.published.index, columns=result.published.columns
        )
        k = read_published(published, policy, use_labels=False)
        if policy.rounding_base is None and set(subtraction_attack(k)) & set(primary_cells(result)):
            broken += 1
    assert broken > 50


def test_audit_is_needed_and_matches_the_lp_attacker(monkeypatch):
    """Line rule alone lets the LP attacker pin primaries; the graph audit finds exactly those."""
    audit = tables_module._pinned_primaries
    monkeypatch.setattr(tables_module, "_pinned_primaries", lambda *args: [])
    exposed_tables = 0
    for table, policy, _, truth in cases()[:150]:
        weak = protect_table(table, policy)  # line rule only
        pinned = lp_pinned(knowledge(weak, policy, truth), primary_cells(weak), truth.ravel())
        layout = tables_module._Layout(
            row_lines=weak.published.columns[-1] == "Total",
            col_lines=weak.published.index[-1] == "Total",
        )
        found = audit(truth, weak.suppressed.to_numpy(), weak.primary.to_numpy(), layout, policy)
        assert {r * truth.shape[1] + c for r, c in found} == pinned
        exposed_tables += bool(pinned)
    assert exposed_tables >= 5


def test_without_margins_only_primary_cells_are_suppressed():
    rng = np.random.default_rng(7)
    for _ in range(50):
        table = random_table(rng)
        result = protect_table(table, POLICIES[0], margins=False)
        assert result.published.shape == table.shape
        np.testing.assert_array_equal(result.suppressed.to_numpy(), result.primary.to_numpy())
