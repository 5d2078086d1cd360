"""Exact formats of every published number and phrase (kills the mutants of report/wording.py:
a percentage off by a factor, a wrong months divisor, a flipped verdict boundary)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.report import wording as W


@pytest.mark.parametrize("x,ok", [(0, True), (1.5, True), (-2, True), (None, False),
                                  (math.nan, False), (math.inf, False), (-math.inf, False),
                                  ("1", False), (np.float64(0.3), True)])
def test_is_num(x, ok):
    assert W.is_num(x) is ok


def test_number_formats_exactly():
    assert W.fmt_ratio(0.72449) == "0.72" and W.fmt_ratio(1.005) in ("1.00", "1.01")
    assert W.fmt_ratio(None) == "–" and W.fmt_ratio(math.nan) == "–"
    assert W.fmt_pct(0.2264) == "22.6%" and W.fmt_pct(0.2264, 0) == "23%"
    assert W.fmt_pct(1.0) == "100.0%" and W.fmt_pct(math.inf) == "–"
    assert W.fmt_pp(-0.0254) == "−2.5 points" and W.fmt_pp(0.0651) == "+6.5 points"
    assert W.fmt_pp(0.0) == "+0.0 points" and W.fmt_pp(None) == "–"
    assert W.fmt_months(365.25) == "12.0" and W.fmt_months(30.4375) == "1.0"
    assert W.fmt_months(45.65625) == "1.5" and W.fmt_months(math.nan) == "–"
    assert W.fmt_months(-1.0) == "0.0" and W.fmt_months(-3.5) == "-0.1"
    assert W.DAYS_PER_MONTH == pytest.approx(30.4375)


def test_p_values():
    assert W.fmt_p(0.0371) == "p = 0.037" and W.fmt_p(0.001) == "p = 0.001"
    assert W.fmt_p(0.000999) == "p < 0.001" and W.fmt_p(1.0) == "p = 1.000"
    assert W.fmt_p(None) == "–" and W.fmt_p(math.nan) == "–"


@pytest.mark.parametrize("hr,lo,hi,expected", [
    (0.72, 0.54, 0.98, "reduction"), (0.72, 0.54, 1.0, "inconclusive"),
    (1.3, 1.0, 1.7, "inconclusive"), (1.3, 1.01, 1.7, "increase"),
    (0.9, 0.7, 1.15, "inconclusive"), (0.9, None, 1.1, "not_estimable"),
    (math.nan, 0.5, 0.9, "not_estimable"), (0.9, 0.5, math.inf, "not_estimable")])
def test_interval_verdict_boundaries(hr, lo, hi, expected):
    assert W.verdict(hr, lo, hi) == expected


def test_verdict_texts_say_what_they_mean():
    t = W.VERDICT_TEXT
    assert "reoffended less" in t["reduction"] and "reoffended more" in t["increase"]
    assert "urgent" in t["increase"] and "urgent" not in t["some_evidence_increase"]
    assert t["some_evidence_reduction"].startswith("There is some evidence")
    assert "does not mean the programme has no effect" in t["inconclusive"]
    assert "could not be estimated" in t["not_estimable"]


def test_natural_frequencies():
    s = W.natural_frequency_sentence(0.226, 0.252, 12, "stalking or harassment")
    assert s == ("For any 100 people like those treated, 23 committed a new stalking or "
                 "harassment offence within a year, compared with 25 of 100 comparable "
                 "people who were not treated.")
    assert "within 2 years" in W.natural_frequency_sentence(0.4, 0.5, 24, "any")
    assert "within 18 months" in W.natural_frequency_sentence(0.4, 0.5, 18, "any")
    assert W.natural_frequency_sentence(None, 0.5, 12, "any") == ""
    assert W.natural_frequency_sentence(0.4, math.nan, 12, "any") == ""


def test_maryland_levels():
    assert W.maryland_level(True, True, True)[0] == 3
    level, why = W.maryland_level(True, False, True)
    assert level == 2 and "imbalanced" in why
    level, why = W.maryland_level(False, True, True)
    assert level == 2 and "unadjusted" in why
    assert W.maryland_level(True, True, False)[0] == 2
    assert "not level 4 or 5" in W.maryland_level(True, True, True)[1]


@pytest.mark.parametrize("name,label", [
    ("age", "age"), ("prior_sh", "prior stalking/harassment offences"),
    ("prior_sh_convictions", "prior stalking/harassment convictions"),
    ("victim_relationship_ex_partner", "relationship to victim: ex partner"),
    ("site[T.SITE_B]", "site: SITE B"), ("sex_M", "sex: M"),
    ("something_else", "something else")])
def test_covariate_labels(name, label):
    assert W.covariate_label(name) == label


def test_natural_frequencies_round_each_share_of_100():
    s = W.natural_frequency_sentence(0.9, 0.8, 12, "any")
    assert "those treated, 90 committed" in s and "compared with 80 of 100" in s


def test_maryland_reasons_exactly():
    assert W.maryland_level(True, True, True)[1] == (
        "a comparison group made alike on measured characteristics (by weighting or "
        "matching), in calendar time and time since offence, with good balance; not level 4 "
        "or 5 because treatment was not "
        "allocated at random and unmeasured differences may remain")
    assert W.maryland_level(True, False, True)[1] == (
        "an adjusted comparison, but some measured characteristics remain imbalanced after "
        "adjustment")
    assert W.maryland_level(False, False, False)[1] == (
        "an unadjusted comparison of treated and untreated groups")


def test_levels_keep_their_letters():
    assert W.covariate_label("site_SITE_X") == "site: SITE X"
    assert W.covariate_label("sex[T.X]") == "sex: X"
