"""Exact checks of disclosure-control details that the broader tests left open.

Written against the mutants that survived `make mutation` (docs/mutation_testing.md): error
messages that name the offending setting, boundary values of the policy, counts written with
separators, keys that are not strings, tie-breaks of the complementary suppression, the cut of
a curve at tied times and missing groups, and the alignment of withheld estimates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from disclosure_attacker import lp_pinned, read_published

from pipeline.disclosure import (
    DisclosurePolicy,
    assert_no_small_counts,
    check_published_document,
    cut_survival_curve,
    protect_rate,
    protect_table,
    publish_count,
    publish_counts,
    withhold_small_estimates,
)

P = DisclosurePolicy()
S, C = "<10", "[c]"


# --- policy --------------------------------------------------------------------------------


def test_policy_accepts_the_smallest_allowed_values():
    policy = DisclosurePolicy(threshold=1, rounding_base=2, min_events_for_estimate=0)
    assert (policy.threshold, policy.rounding_base, policy.min_events_for_estimate) == (1, 2, 0)


def test_policy_errors_name_the_setting():
    with pytest.raises(ValueError) as err:
        DisclosurePolicy(min_events_for_estimate=-1)
    assert str(err.value) == "disclosure policy: min_events_for_estimate must be >= 0, got -1"
    with pytest.raises(ValueError) as err:
        DisclosurePolicy(secondary_label="<10")
    assert str(err.value) == (
        "disclosure policy: secondary_label must differ from suppressed_label, otherwise "
        "complementary cells (>= threshold) would be shown as small counts")
    with pytest.raises(TypeError) as err:
        DisclosurePolicy.from_mapping([("threshold", 5)])  # type: ignore[arg-type]
    assert str(err.value) == "disclosure policy: expected a mapping, got list"


# --- single counts and rates ---------------------------------------------------------------


def test_count_errors_name_the_argument_and_value():
    with pytest.raises(ValueError) as err:
        publish_count(-1, P)
    assert str(err.value) == "count must be a non-negative integer, got -1"
    with pytest.raises(TypeError) as err:
        publish_count("5", P)  # type: ignore[arg-type]
    assert str(err.value) == "count must be a non-negative integer, got '5'"
    with pytest.raises(ValueError) as err:
        protect_rate(-1, 40, P)
    assert str(err.value) == "numerator must be a non-negative integer, got -1"
    with pytest.raises(TypeError) as err:
        protect_rate(4, 4.5j, P)  # type: ignore[arg-type]
    assert str(err.value) == "denominator must be a non-negative integer, got 4.5j"
    with pytest.raises(TypeError) as err:
        publish_counts([1, 2], P)  # type: ignore[arg-type]
    assert str(err.value) == "expected a pandas Series or DataFrame, got list"


# --- document checker ----------------------------------------------------------------------


def test_counts_written_with_thousands_separators_are_read_as_numbers():
    policy = DisclosurePolicy(threshold=2000)
    doc = {"n": ["1,204", "1\u202f204", "1\u2009204", "2,500"]}
    assert check_published_document(doc, policy) == [
        "$.n[0]: '1,204'", "$.n[1]: '1\\u202f204'", "$.n[2]: '1\\u2009204'"]


def test_fractional_and_non_finite_values_are_not_counts():
    doc = {"n": [2.5, float("nan"), float("inf"), 3.0]}
    assert check_published_document(doc, P) == ["$.n[3]: 3.0"]


def test_only_string_keys_can_mark_counts():
    assert check_published_document({3: 5, "n": 7, "rate": 4}, P) == ["$.n: 7"]


def test_assert_no_small_counts_lists_every_finding():
    with pytest.raises(AssertionError) as err:
        assert_no_small_counts({"n": 7, "events_n": 3}, P)
    assert str(err.value) == (
        "2 potentially disclosive count(s) below 10: $.n: 7; $.events_n: 3")


# --- tables: input errors ------------------------------------------------------------------


@pytest.mark.parametrize(("table", "error", "message"), [
    ([[1, 2]], TypeError, "table must be a pandas DataFrame, got list"),
    (pd.DataFrame(), ValueError, "table is empty"),
    (pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
     ValueError, "table must have a flat index and columns; flatten the MultiIndex first"),
    (pd.DataFrame({"Total": [1]}), ValueError,
     "table already contains 'Total'; pass it without totals"),
    (pd.DataFrame({"a": ["1"], "b": [True]}), TypeError,
     "table columns must hold numeric counts; not numeric: ['a', 'b']"),
    (pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}), ValueError,
     "table contains missing or infinite values; fill structural zeros first"),
    (pd.DataFrame({"a": [1.5]}), ValueError, "table must contain non-negative integer counts"),
    (pd.DataFrame({"a": [-1]}), ValueError, "table must contain non-negative integer counts"),
])
def test_protect_table_input_errors(table, error, message):
    with pytest.raises(error) as err:
        protect_table(table, P)
    assert str(err.value) == message


def test_protect_table_accepts_nullable_numeric_columns_beside_plain_ones():
    table = pd.DataFrame({"a": pd.array([20.0, 30.0], dtype="Float64"), "b": [40, 50]})
    assert protect_table(table, P).published.to_numpy().tolist() == [
        ["20", "40", "60"], ["30", "50", "80"], ["50", "90", "140"]]


# --- complementary suppression: tie-breaks -------------------------------------------------


def test_ties_go_to_an_interior_cell_before_a_total():
    # Lines: 10 complements 5 (row 0), 10 complements 1 (row 1), the total row's 1 gets the
    # column total 20 (first of two 20s). The audit then finds 5 pinned and must suppress one
    # more cell in its row or column: the interior 15 (row 1) and the row total 15 (row 0)
    # tie; the interior cell is taken first. A further complement (row 0's total, then row 1's)
    # closes the lines.
    table = pd.DataFrame([[5, 10, 0], [15, 10, 1]])
    assert protect_table(table, P).published.to_numpy().tolist() == [
        [S, C, "0", C],
        [C, C, S, C],
        [C, "20", S, "41"],
    ]


def test_ties_between_two_totals_go_to_the_top_row():
    # Lines: 10 complements 5 (row 0) and 10 complements 1 (row 1). The audit finds 5 pinned
    # (column 1 adds up 10 + 1 = 11 with bounds >= 10 and >= 1); its row and column offer two
    # totals of 15: row 0's total and column 2's total. The top-most (row 0's) is taken, and
    # column 2's total stays published.
    table = pd.DataFrame([[0, 10, 5], [15, 1, 10]])
    published = protect_table(table, P).published.to_numpy().tolist()
    assert published[0][3] == C and published[2][2] == "15"
    assert published == [
        ["0", C, S, C],
        [C, S, C, C],
        [C, C, "15", "41"],
    ]


# --- complementary suppression: the audit on tables found by searching for weak spots --------

P5 = DisclosurePolicy(threshold=5)
AUDIT_TABLES = {
    # a primary in the total row at 8: one unit up is still a small count, two are not
    "total-row-primary": ([[2, 2, 3, 5], [15, 1, 5, 1], [15, 5, 0, 12]], P),
    # a flow table: the one complement (5) plus the total 6 would pin the 1
    "single-column": ([[1], [5]], P5),
    "node-numbering": ([[30, 2, 12, 10], [5, 0, 9, 1], [15, 2, 15, 30]], P5),
    "wide": ([[9, 15, 3, 8, 15, 1, 3], [1, 8, 30, 1, 5, 5, 20], [2, 9, 3, 0, 15, 0, 3]], P5),
    # a complement may be moved down to exactly the threshold
    "bound-reached": ([[3, 8], [9, 5], [1, 1]], P),
    # the pinned 1's row and column offer only a zero: the complement comes from elsewhere
    "zero-nearby": ([[10, 1], [15, 12], [9, 10], [0, 10]], P),
    "row-or-column-first": ([[8, 0, 12, 9, 20], [8, 5, 0, 8, 10], [15, 20, 2, 10, 15],
                             [3, 5, 20, 9, 9]], P5),
}


def _attacker_view(result, policy, table, published=None):
    """(knowledge, primary cells, truth) for the independent LP attacker of the tests."""
    aug = result.values.copy()
    truth = np.array(table, dtype=float)
    if aug.shape[1] > truth.shape[1]:
        truth = np.column_stack([truth, truth.sum(axis=1)])
    if aug.shape[0] > truth.shape[0]:
        truth = np.vstack([truth, truth.sum(axis=0)])
    knowledge = read_published(result.published if published is None else published, policy,
                               truth=truth.ravel())
    return knowledge, np.flatnonzero(result.primary.to_numpy().ravel()), truth


@pytest.mark.parametrize("name", list(AUDIT_TABLES))
def test_no_primary_cell_is_recoverable_by_linear_programming(name):
    table, policy = AUDIT_TABLES[name]
    result = protect_table(pd.DataFrame(table), policy)
    knowledge, primary, truth = _attacker_view(result, policy, table)
    assert lp_pinned(knowledge, primary, truth.ravel()) == set()


def test_single_column_flow_table_hides_its_total_too():
    # 1 + [c] = 6 with [c] >= 5 gives 1 exactly: the total must go as well
    result = protect_table(pd.DataFrame([[1], [5]]), P5)
    assert result.published.iloc[:, 0].tolist() == ["<5", C, C]


@pytest.mark.parametrize("name", list(AUDIT_TABLES))
def test_a_complementary_cell_always_holds_at_least_threshold(name):
    # "[c]" tells the reader the cell is >= threshold: a suppressed zero would be a false label
    table, policy = AUDIT_TABLES[name]
    result = protect_table(pd.DataFrame(table), policy)
    _, _, truth = _attacker_view(result, policy, table)
    assert (truth[result.secondary.to_numpy()] >= policy.threshold).all()


def test_audit_takes_complements_from_the_pinned_cells_row_or_column_first():
    table, policy = AUDIT_TABLES["row-or-column-first"]
    assert protect_table(pd.DataFrame(table), policy).published.to_numpy().tolist() == [
        [C, "0", C, C, "20", "49"],
        [C, C, "0", "8", "10", "31"],
        ["15", "20", "<5", C, "15", "62"],
        ["<5", C, "20", C, "9", "46"],
        ["34", "30", "34", "36", "54", "188"],
    ]


def test_a_table_that_suppression_cannot_protect_is_refused():
    # nine ones under a grand total of 9: even with every cell hidden, 9 = 9 x 1 pins each
    with pytest.raises(RuntimeError) as err:
        protect_table(pd.DataFrame(np.ones((3, 3), dtype=int)), P)
    assert str(err.value) == (
        "cannot protect this table by suppression; publish it at a coarser level")


@pytest.mark.parametrize("name", ["total-row-primary", "node-numbering", "bound-reached"])
def test_every_complement_is_needed(name):
    # no over-suppression on these tables: publishing any one complementary cell's true value
    # lets the LP attacker pin some primary cell
    table, policy = AUDIT_TABLES[name]
    result = protect_table(pd.DataFrame(table), policy)
    _, primary, truth = _attacker_view(result, policy, table)
    complements = np.argwhere(result.secondary.to_numpy())
    assert len(complements) > 0
    for i, j in complements:
        published = result.published.copy()
        published.iat[i, j] = f"{int(truth[i, j]):,}"
        knowledge, _, _ = _attacker_view(result, policy, table, published)
        assert lp_pinned(knowledge, primary, truth.ravel()), (i, j)


# --- survival curves and estimates ---------------------------------------------------------


def test_curve_cut_uses_the_time_column_not_the_index():
    km = pd.DataFrame({"time": [0, 30, 60, 90], "n_risk": [50, 30, 5, 20]}, index=[3, 2, 1, 0])
    assert cut_survival_curve(km, P, time_col="time")["time"].tolist() == [0, 30]


def test_curve_cut_at_tied_times_follows_input_order():
    # 48 rows at times 0-3; at time 0 (input rows 3, 7, 11, ...) the third row is the first
    # with fewer than 10 at risk: the two before it stay, nothing after it (in input order).
    times = np.array([3, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0] * 2)
    n_risk = np.full(times.size, 20)
    n_risk[11] = 5
    out = cut_survival_curve(pd.DataFrame({"time": times, "n_risk": n_risk}), P, time_col="time")
    assert out.index.tolist() == [3, 7]


def test_curve_cut_treats_a_missing_group_as_a_group():
    km = pd.DataFrame({
        "time": [0, 30, 60, 0, 30, 60],
        "n_risk": [40, 12, 11, 40, 5, 20],
        "arm": ["treated"] * 3 + [None] * 3,
    })
    out = cut_survival_curve(km, P, time_col="time", by="arm")
    assert out.index.tolist() == [0, 1, 2, 3]


def test_missing_column_error_lists_what_is_there():
    km = pd.DataFrame({"time": [0], "n_risk": [50]})
    with pytest.raises(KeyError) as err:
        cut_survival_curve(km, P, n_risk_col="at_risk", time_col="time")
    assert err.value.args[0] == "missing column(s) ['at_risk']; available: ['time', 'n_risk']"


def test_withheld_estimates_keep_the_row_labels():
    est = pd.DataFrame(
        {"events": [3, 25, np.nan], "hr": [0.5, 0.9, 1.1], "label": ["0.50", "0.90", "1.10"]},
        index=["under 25", "25-40", "over 40"],
    )
    out = withhold_small_estimates(est, "events", P, estimate_cols=["hr", "label"])
    assert out["withheld_reason"].to_dict() == {
        "under 25": "fewer than 10 events", "25-40": None, "over 40": "event count missing"}
    assert out.loc["25-40", ["hr", "label"]].tolist() == [0.9, "0.90"]
    # withheld cells are NaN (a float), also in a text column
    for cell in (out.loc["under 25", "label"], out.loc["over 40", "label"]):
        assert isinstance(cell, float) and math.isnan(cell)
