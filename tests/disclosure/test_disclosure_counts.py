"""Policy validation, single counts, rounding and rates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.disclosure import (
    DisclosurePolicy,
    is_suppressed,
    protect_rate,
    publish_count,
    publish_counts,
    round_to_base,
)

P = DisclosurePolicy()
DASH = "\u2013"


def test_policy_defaults_and_derived_fields():
    assert (P.threshold, P.suppress_zeros, P.rounding_base) == (10, False, None)
    assert P.suppressed_label == "<10" and P.min_events_for_estimate == 10
    other = DisclosurePolicy(threshold=5)
    assert other.suppressed_label == "<5" and other.min_events_for_estimate == 5
    assert DisclosurePolicy(threshold=5, min_events_for_estimate=20).min_events_for_estimate == 20


def test_policy_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.threshold = 3  # type: ignore[misc]


def test_from_mapping_builds_policy_and_accepts_none():
    policy = DisclosurePolicy.from_mapping(
        {"threshold": 5, "suppress_zeros": True, "rounding_base": 5}
    )
    assert policy == DisclosurePolicy(threshold=5, suppress_zeros=True, rounding_base=5)
    assert DisclosurePolicy.from_mapping(None) == P
    assert DisclosurePolicy.from_mapping({"rounding_base": None}) == P


@pytest.mark.parametrize(
    ("mapping", "error", "message"),
    [
        ({"treshold": 5}, ValueError, "unknown setting"),
        ({"threshold": 0}, ValueError, "threshold must be >= 1"),
        ({"threshold": "10"}, TypeError, "threshold must be an int"),
        ({"threshold": True}, TypeError, "threshold must be an int"),
        ({"threshold": 7.0}, TypeError, "threshold must be an int"),
        ({"suppress_zeros": "no"}, TypeError, "suppress_zeros must be a bool"),
        ({"rounding_base": 1}, ValueError, "rounding_base must be >= 2"),
        ({"min_events_for_estimate": -1}, ValueError, "min_events_for_estimate"),
        ({"suppressed_label": ""}, ValueError, "suppressed_label"),
        ({"secondary_label": "<10"}, ValueError, "must differ"),
    ],
)
def test_from_mapping_rejects_bad_config_with_clear_errors(mapping, error, message):
    with pytest.raises(error, match=message):
        DisclosurePolicy.from_mapping(mapping)


def test_from_mapping_rejects_non_mapping():
    with pytest.raises(TypeError, match="expected a mapping"):
        DisclosurePolicy.from_mapping([("threshold", 5)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "default", "zeros_suppressed"),
    [(0, False, True), (1, True, True), (9, True, True), (10, False, False), (11, False, False)],
)
def test_is_suppressed_boundaries(n, default, zeros_suppressed):
    assert is_suppressed(n, P) is default
    assert is_suppressed(n, DisclosurePolicy(suppress_zeros=True)) is zeros_suppressed


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0"), (1, "<10"), (9, "<10"), (10, "10"), (1234, "1,234"), (np.int64(15), "15")],
)
def test_publish_count_default(n, expected):
    assert publish_count(n, P) == expected


def test_publish_count_zero_suppressed_when_configured():
    assert publish_count(0, DisclosurePolicy(suppress_zeros=True)) == "<10"


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0"), (7, "<10"), (10, "10"), (12, "10"), (13, "15"), (1234567, "1,234,565")],
)
def test_publish_count_rounds_after_suppressing_on_the_true_value(n, expected):
    assert publish_count(n, DisclosurePolicy(rounding_base=5)) == expected


def test_round_to_base_halves_up_and_works_on_arrays():
    policy = DisclosurePolicy(rounding_base=10)
    assert round_to_base(15, policy) == 20 and round_to_base(14, policy) == 10
    np.testing.assert_array_equal(round_to_base(np.array([0, 4, 5, 96]), policy), [0, 0, 10, 100])
    assert round_to_base(17, P) == 17


@pytest.mark.parametrize("bad", [-1, 2.5, float("nan"), None, "5", True])
def test_publish_count_rejects_non_counts(bad):
    with pytest.raises((TypeError, ValueError)):
        publish_count(bad, P)


def test_publish_counts_keeps_shape_index_and_name():
    at_risk = pd.Series([120, 15, 9, 0], index=[0, 6, 12, 18], name="n_risk")
    out = publish_counts(at_risk, P)
    assert out.tolist() == ["120", "15", "<10", "0"]
    assert list(out.index) == [0, 6, 12, 18] and out.name == "n_risk"
    frame = publish_counts(pd.DataFrame({"a": [3, 30], "b": [1000, 0]}), P)
    assert frame.to_numpy().tolist() == [["<10", "1,000"], ["30", "0"]]


def test_protect_rate_formats_a_safe_rate():
    assert protect_rate(10, 40, P) == "25.0"
    assert protect_rate(123, 4567, P, per=1000, decimals=2) == "26.93"
    assert protect_rate(0, 40, P) == "0.0"


@pytest.mark.parametrize(
    ("num", "den"),
    [(5, 40), (10, 9), (95, 100), (40, 40 + 3)],
    ids=["small-numerator", "small-denominator", "small-complement", "small-complement-2"],
)
def test_protect_rate_withholds_rates_involving_a_suppressed_count(num, den):
    if num > den:
        assert protect_rate(num, den, P, proportion=False) == DASH
    else:
        assert protect_rate(num, den, P) == DASH


def test_protect_rate_for_non_proportions_ignores_the_complement():
    assert protect_rate(95, 100, P, proportion=False) == "95.0"
    assert protect_rate(150, 100, P, proportion=False, per=1) == "1.5"
    with pytest.raises(ValueError, match="exceeds denominator"):
        protect_rate(150, 100, P)


def test_protect_rate_zero_handling_both_ways():
    assert protect_rate(0, 0, P) == DASH
    zeros = DisclosurePolicy(suppress_zeros=True)
    assert protect_rate(0, 40, zeros) == DASH
    assert protect_rate(40, 40, zeros) == DASH  # 100% reveals a zero complement
    assert protect_rate(40, 40, P) == "100.0"
