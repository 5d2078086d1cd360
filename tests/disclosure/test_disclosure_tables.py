"""Hand-made tables with known protected outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.disclosure import DisclosurePolicy, protect_table

P = DisclosurePolicy()
S, C = "<10", "[c]"


def frame(rows, index=None, columns=None) -> pd.DataFrame:
    return pd.DataFrame(rows, index=index, columns=columns)


def published(table: pd.DataFrame, policy: DisclosurePolicy = P, **kwargs) -> list[list[str]]:
    return protect_table(table, policy, **kwargs).published.to_numpy().tolist()


def test_single_small_cell_gets_smallest_complements_and_totals_stay_published():
    table = frame([[4, 20, 30], [25, 40, 35], [12, 60, 70]], list("abc"), list("xyz"))
    result = protect_table(table, P)
    assert result.published.to_numpy().tolist() == [
        [S, C, "30", "54"],
        ["25", "40", "35", "100"],
        [C, C, "70", "142"],
        ["41", "120", "135", "296"],
    ]
    assert list(result.published.index) == ["a", "b", "c", "Total"]
    assert list(result.published.columns) == ["x", "y", "z", "Total"]
    assert result.primary.to_numpy().sum() == 1 and result.secondary.to_numpy().sum() == 3


def test_small_row_total_is_suppressed_and_protected_in_the_total_column():
    table = frame([[2, 3, 0], [40, 50, 60]])
    assert published(table) == [
        [S, S, "0", S],
        [C, C, "60", C],
        ["42", "53", "60", "155"],
    ]


def test_audit_adds_cells_when_label_bounds_would_pin_a_primary():
    # The line rule alone gives the cycle 5, 10, 1, 10: the complements are >= 10, which
    # forces 5 and 1 exactly. The audit must suppress more.
    table = frame([[5, 10, 50], [10, 1, 50], [50, 50, 50]])
    assert published(table) == [
        [S, C, C, "65"],
        [C, S, C, "61"],
        [C, C, "50", "150"],
        ["65", "61", "150", "276"],
    ]


def test_flow_table_single_column_gets_only_a_total_row():
    table = frame({"n": [120, 45, 7, 30]}, index=["referred", "assessed", "dropped", "completed"])
    result = protect_table(table, P)
    assert result.published["n"].tolist() == ["120", "45", S, C, "202"]
    assert list(result.published.columns) == ["n"]
    assert result.published.index[-1] == "Total"


def test_single_row_table_gets_only_a_total_column():
    assert published(frame([[3, 0, 0]])) == [[S, "0", "0", S]]
    assert published(frame([[3, 12, 40]])) == [[S, C, "40", "55"]]


def test_one_by_one_table_adds_no_duplicate_total():
    assert published(frame([[7]])) == [[S]]
    assert published(frame([[25]])) == [["25"]]


def test_tie_break_prefers_the_leftmost_cell_of_equal_counts():
    assert published(frame([[3, 20, 20], [30, 40, 50]])) == [
        [S, C, "20", "43"],
        [C, C, "50", "120"],
        ["33", "60", "70", "163"],
    ]


def test_tie_break_prefers_an_interior_cell_over_an_equal_total():
    policy = DisclosurePolicy(suppress_zeros=True)
    assert published(frame([[0], [12]]), policy) == [[S], [C], ["12"]]


def test_zeros_are_published_by_default():
    result = protect_table(frame([[0, 15], [20, 30]]), P)
    assert result.published.to_numpy().tolist() == [
        ["0", "15", "15"],
        ["20", "30", "50"],
        ["20", "45", "65"],
    ]
    assert not result.suppressed.to_numpy().any()


def test_zeros_are_suppressed_and_protected_when_configured():
    result = protect_table(frame([[0, 15], [20, 30]]), DisclosurePolicy(suppress_zeros=True))
    assert result.published.to_numpy().tolist() == [[S, C, "15"], [C, C, "50"], ["20", "45", "65"]]
    assert result.primary.to_numpy().tolist() == [[True, False, False], [False] * 3, [False] * 3]


def test_rounding_applies_to_cells_and_to_independently_rounded_true_totals():
    policy = DisclosurePolicy(rounding_base=5)
    result = protect_table(frame([[4, 22, 48], [13, 38, 51]]), policy)
    assert result.published.to_numpy().tolist() == [
        [S, C, "50", "75"],
        [C, C, "50", "100"],
        ["15", "60", "100", "175"],
    ]
    assert result.values.iloc[0, 2] == 50.0  # numbers match what is printed


def test_values_frame_is_nan_exactly_where_suppressed():
    result = protect_table(frame([[4, 20, 30], [25, 40, 35], [12, 60, 70]]), P)
    values = result.values.to_numpy()
    np.testing.assert_array_equal(np.isnan(values), result.suppressed.to_numpy())
    assert values[-1, -1] == 296.0


def test_thousands_separators_and_custom_labels():
    policy = DisclosurePolicy(threshold=5, secondary_label="*")
    result = protect_table(frame([[1234, 3], [2000, 800]]), policy, total_label="All")
    assert result.published.to_numpy().tolist() == [
        ["*", "<5", "1,237"],
        ["*", "*", "2,800"],
        ["3,234", "803", "4,037"],
    ]
    assert result.published.index[-1] == "All" and result.published.columns[-1] == "All"


def test_without_margins_only_primary_suppression_is_applied():
    result = protect_table(frame([[4, 20], [25, 40]]), P, margins=False)
    assert result.published.to_numpy().tolist() == [[S, "20"], ["25", "40"]]


def test_integral_floats_are_accepted_and_input_is_not_modified():
    table = frame([[4.0, 20.0], [25.0, 40.0]])
    before = table.copy()
    assert published(table)[0][0] == S
    pd.testing.assert_frame_equal(table, before)


def test_result_is_deterministic():
    table = frame(np.random.default_rng(3).integers(0, 30, (5, 5)))
    first, second = protect_table(table, P), protect_table(table, P)
    pd.testing.assert_frame_equal(first.published, second.published)


def test_table_that_no_suppression_can_protect_raises():
    # Nine non-zero cells under a grand total "<10": each cell must be exactly 1.
    with pytest.raises(RuntimeError, match="coarser level"):
        protect_table(frame(np.ones((3, 3), dtype=int)), P)
    assert published(frame([[1], [1]])) == [[S], [S], [S]]  # x + y = T < 10 leaves x in 1..8


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (frame([[1, -2]]), ValueError),
        (frame([[1.5, 2]]), ValueError),
        (frame([[np.nan, 2]]), ValueError),
        (frame([["a", 2]]), TypeError),
        (frame([[True, False]]), TypeError),
        (frame([[1, 2]], columns=["x", "Total"]), ValueError),
        (pd.DataFrame(), ValueError),
        (frame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)])), ValueError),
        ([[1, 2]], TypeError),
    ],
)
def test_invalid_tables_are_rejected(table, error):
    with pytest.raises(error):
        protect_table(table, P)
