"""Every branch of the graded verdict rule (pipeline/report/verdict.py)."""

import math

import pytest

from pipeline.report.verdict import VERDICTS, Evidence, agree, grade, reasons
from pipeline.report.wording import VERDICT_TEXT


def ev(decision="reduction", balanced=True, hrs=(0.8, 0.9), estimable=True):
    return Evidence(estimable=estimable, decision=decision, balanced=balanced,
                    sensitivity_hrs=hrs)


@pytest.mark.parametrize("evidence, expected", [
    (ev(estimable=False), "not_estimable"),
    (ev(decision=""), "inconclusive"),
    (ev(), "reduction"),
    (ev(balanced=False), "some_evidence_reduction"),
    (ev(hrs=(0.8, 1.05)), "some_evidence_reduction"),
    (ev(hrs=(0.8, None)), "some_evidence_reduction"),
    (ev(hrs=()), "some_evidence_reduction"),
    (ev(decision="increase", hrs=(1.2, 1.4)), "increase"),
    (ev(decision="increase", hrs=(1.2, 0.9)), "some_evidence_increase"),
    (ev(decision="increase", balanced=False, hrs=(1.2, 1.3)), "some_evidence_increase"),
])
def test_grade(evidence, expected):
    assert grade(evidence) == expected


def test_every_verdict_has_wording_and_reasons_only_for_some_evidence():
    assert set(VERDICTS) <= set(VERDICT_TEXT)
    assert reasons(ev()) == [] and reasons(ev(decision="")) == []
    assert len(reasons(ev(balanced=False, hrs=(1.1,)))) == 2


def test_agree_rejects_non_finite_and_wrong_direction():
    assert not agree("reduction", (math.nan,))
    assert not agree("reduction", (1.0,))
    assert agree("increase", (1.01,))
