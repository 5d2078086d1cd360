"""Document and text checkers used by report tests."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.disclosure import (
    DisclosurePolicy,
    assert_no_small_counts,
    check_published_document,
    find_small_counts_in_text,
)

P = DisclosurePolicy()


def report_doc() -> dict:
    return {
        "title": "Outcomes 2024",
        "year": 3,
        "cohort": {"referred_n": 120, "completed_n": 7, "dropout_count": "4", "n": 127},
        "tables": [
            {"n_by_arm": {"treated": 12, "comparison": np.int64(6)}},
            {"counts": [15, 2.0, "<10", "1,204"], "flag": True},
        ],
        "n_at_risk": [{"month": 6, "value": 40}],
        "event_counts": [10, 0],
        "hr": 0.5,
        "is_n": True,
    }


def test_document_checker_flags_tagged_small_counts_with_paths():
    assert check_published_document(report_doc(), P) == [
        "$.cohort.completed_n: 7",
        "$.cohort.dropout_count: '4'",
        "$.tables[0].n_by_arm.comparison: np.int64(6)",
        "$.tables[1].counts[1]: 2.0",
        "$.n_at_risk[0].month: 6",
    ]


def test_document_checker_zero_handling_and_threshold():
    findings = check_published_document(report_doc(), DisclosurePolicy(suppress_zeros=True))
    assert "$.event_counts[1]: 0" in findings
    assert check_published_document(report_doc(), DisclosurePolicy(threshold=3)) == [
        "$.tables[1].counts[1]: 2.0"
    ]


def test_document_checker_passes_a_clean_document():
    clean = {"cohort": {"completed_n": "<10", "referred_n": 120, "flag_n": False}, "year": 5}
    assert check_published_document(clean, P) == []
    assert_no_small_counts(clean, P)


def test_assert_no_small_counts_raises_with_the_findings():
    with pytest.raises(AssertionError, match=r"5 potentially disclosive.*completed_n: 7"):
        assert_no_small_counts(report_doc(), P)


TEXT = """Of the 120 men referred (n = 120), 7 participants dropped out and 3 of 40
completers re-offended. Table 3 shows rates of 7.5% and 1,204 referrals; <10 victims
reported breaches. N: 4. In 2 new referrals the outcome was unknown. Seven men declined."""


def test_text_scanner_flags_counts_presented_as_counts():
    assert find_small_counts_in_text(TEXT, P) == [
        "7 participants",
        "3 of 40",
        "N: 4",
        "2 new referrals",
    ]


def test_text_scanner_respects_threshold_and_assert_helper():
    assert find_small_counts_in_text(TEXT, DisclosurePolicy(threshold=3)) == ["2 new referrals"]
    with pytest.raises(AssertionError, match="7 participants"):
        assert_no_small_counts(TEXT, P)
    assert_no_small_counts("Of 120 men, <10 dropped out; 45.5% completed.", P)
