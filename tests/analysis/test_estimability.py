"""The one rule of the analysis layer: a number, or a reason it could not be estimated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.estimability import REASONS, arm_problem, enforce, explain, unexplained
from pipeline.analysis.survival_results import ESTIMATE_COLUMNS, _row, not_estimable

COUNTS = {"n_treated": 5, "n_comparison": 5, "events_treated": 1, "events_comparison": 2}


def frame(*rows):
    return pd.DataFrame(list(rows), columns=ESTIMATE_COLUMNS)


def test_rows_with_a_reason_carry_no_numbers():
    row = _row("a", "hr", COUNTS, 0.5, 0.2, 0.9, 0.01, unit="ratio", reason="separation")
    out = enforce(frame(row)).iloc[0]
    assert out["reason"] == "separation"
    assert np.isnan([out["estimate"], out["lower"], out["upper"], out["p"]]).all()


def test_unforeseen_bad_numbers_get_a_reason():
    rows = [_row("a", "hr", COUNTS, 0.0, 0.0, np.inf, 1.0, unit="ratio"),
            _row("a", "hr2", COUNTS, 0.7, 0.5, np.inf, unit="ratio"),
            _row("a", "rd", COUNTS, np.nan, unit="proportion"),
            _row("a", "ok", COUNTS, 0.7, 0.5, 0.9, 0.02, unit="ratio"),
            _row("a", "chi", COUNTS, 3.2, p=0.07, unit="chi2")]
    out = enforce(frame(*rows)).set_index("measure")
    assert out.loc["hr", "reason"] == "degenerate_fit"
    assert out.loc["hr2", "reason"] == "unbounded_interval"
    assert out.loc["rd", "reason"] == "non_finite_result"
    assert out.loc["ok", "reason"] == "" and out.loc["ok", "estimate"] == 0.7
    assert out.loc["chi", "reason"] == "" and out.loc["chi", "p"] == 0.07
    assert unexplained(out).empty


def test_unexplained_finds_rule_breakers():
    bad = frame(_row("a", "hr", COUNTS, np.nan))
    assert len(unexplained(bad)) == 1
    assert unexplained(frame(not_estimable("a", "hr", COUNTS, "no_events"))).empty


def test_arm_problem_in_order_of_severity():
    assert arm_problem(0, 5, 0, 1) == "arm_empty"
    assert arm_problem(5, 5, 0, 0) == "no_events"
    assert arm_problem(5, 5, 0, 3) == "no_events_in_arm"
    assert arm_problem(5, 5, 2, 3) == ""


def test_every_reason_has_plain_words():
    assert all(text and not text.endswith(".") for text in REASONS.values())
    assert explain("no_events") == REASONS["no_events"]
    assert explain("something_new") == "something new"
