"""Survival-curve cutting and withholding of subgroup estimates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.disclosure import DisclosurePolicy, cut_survival_curve, withhold_small_estimates

P = DisclosurePolicy()


def km_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [0, 30, 60, 90, 120, 150, 180],
            "n_risk": [50, 30, 12, 10, 9, 12, 5],
            "survival": [1.0, 0.9, 0.8, 0.75, 0.7, 0.7, 0.6],
        }
    )


def test_curve_is_cut_from_the_first_time_below_threshold_even_if_it_rises_again():
    out = cut_survival_curve(km_frame(), P, time_col="time")
    assert out["time"].tolist() == [0, 30, 60, 90]
    assert out["n_risk"].min() >= 10


def test_curve_cut_follows_the_threshold():
    assert len(cut_survival_curve(km_frame(), DisclosurePolicy(threshold=5), time_col="time")) == 7
    assert len(cut_survival_curve(km_frame(), DisclosurePolicy(threshold=51), time_col="time")) == 0


def test_curve_cut_uses_time_order_not_row_order():
    shuffled = km_frame().sample(frac=1, random_state=1)
    out = cut_survival_curve(shuffled, P, time_col="time")
    assert sorted(out["time"].tolist()) == [0, 30, 60, 90]
    assert list(out.index) == [i for i in shuffled.index if i in {0, 1, 2, 3}]  # input order kept


def test_curve_cut_uses_the_index_as_time_by_default():
    km = km_frame().set_index("time")
    assert cut_survival_curve(km, P).index.tolist() == [0, 30, 60, 90]


def test_curve_cut_per_group():
    treated = km_frame().assign(arm="treated")
    comparison = km_frame().assign(arm="comparison", n_risk=[40, 20, 9, 30, 30, 30, 30])
    km = pd.concat([treated, comparison], ignore_index=True)
    out = cut_survival_curve(km, P, time_col="time", by="arm")
    assert out.loc[out["arm"] == "treated", "time"].tolist() == [0, 30, 60, 90]
    assert out.loc[out["arm"] == "comparison", "time"].tolist() == [0, 30]


def test_curve_cut_rejects_missing_columns_and_values():
    with pytest.raises(KeyError, match="n_at_risk"):
        cut_survival_curve(km_frame(), P, n_risk_col="n_at_risk", time_col="time")
    with pytest.raises(ValueError, match="missing"):
        cut_survival_curve(km_frame().assign(n_risk=[50, np.nan, 1, 1, 1, 1, 1]), P)


def estimates_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subgroup": ["under 25", "25-40", "over 40", "unknown"],
            "n": [40, 120, 60, 30],
            "events": [3, 10, 25, np.nan],
            "hazard_ratio": [0.5, 0.8, 0.9, 1.1],
            "ci_low": [0.1, 0.5, 0.6, 0.4],
            "ci_high": [2.0, 1.2, 1.3, 2.5],
        }
    )


def test_small_event_estimates_are_blanked_with_a_reason():
    source = estimates_frame()
    out = withhold_small_estimates(source, "events", P)
    blanked = out[["hazard_ratio", "ci_low", "ci_high"]].isna().all(axis=1).tolist()
    assert blanked == [True, False, False, True]
    assert out["withheld_reason"].tolist() == [
        "fewer than 10 events",
        None,
        None,
        "event count missing",
    ]
    assert out["n"].tolist() == [40, 120, 60, 30]  # counts untouched by default
    assert out["subgroup"].tolist() == source["subgroup"].tolist()
    assert source["hazard_ratio"].notna().all()  # input not modified


def test_min_events_is_configurable_and_estimate_columns_explicit():
    policy = DisclosurePolicy(min_events_for_estimate=20)
    out = withhold_small_estimates(estimates_frame(), "events", policy, estimate_cols=["ci_low"])
    assert out["ci_low"].isna().tolist() == [True, True, False, True]
    assert out["hazard_ratio"].notna().all()
    assert out["withheld_reason"].iloc[1] == "fewer than 20 events"


def test_withhold_rejects_bad_columns():
    with pytest.raises(KeyError, match="n_events"):
        withhold_small_estimates(estimates_frame(), "n_events", P)
    with pytest.raises(ValueError, match="events column"):
        withhold_small_estimates(estimates_frame(), "events", P, estimate_cols=["events"])
