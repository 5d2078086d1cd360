"""Report sentences are generated from the numbers and the configuration: every branch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.report import sentences as S
from pipeline.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def cfg():
    return load_config(Path(PROJECT_ROOT / "config" / "evaluation.yaml"))


def summary(verdict="inconclusive", mde=0.8, hr_available=True, reason=None, **kw):
    hr = {"estimate": "0.90", "ci": "0.70 to 1.15", "p": "p = 0.400",
          "available": hr_available}
    if reason:
        hr["reason"] = reason
    base = {"verdict": verdict, "hr": hr, "mde_value": mde, "mde_hr": "0.80",
            "evalue": "1.45", "evalue_ci": "1.00", "sms_level": 3, "sms_reason": "a design",
            "analysis": "matched", "analysis_label": "Matched comparison (main analysis)",
            "n_treated": "176", "n_comparison": "176"}
    return {**base, **kw}


def test_inconclusive_with_enough_power_says_a_large_effect_was_detectable(cfg):
    text = S.verdict_text(summary(mde=0.80), cfg)
    assert "large enough to detect a hazard ratio of 0.80" in text
    assert "more people need" not in text


def test_inconclusive_without_power_says_more_people_are_needed(cfg):
    text = S.verdict_text(summary(mde=0.55), cfg)
    assert "only detect a hazard ratio of 0.55" in text
    assert "more people need to start treatment" in text
    assert "complete the programme" not in text


def test_inconclusive_without_a_detectable_effect_says_no_more(cfg):
    text = S.verdict_text(summary(mde=None), cfg)
    assert text.startswith("The results are inconclusive")
    assert "detect" not in text


def test_plausible_effect_comes_from_the_configuration(cfg):
    text = S.verdict_text(summary(mde=0.70), dataclasses.replace(cfg, plausible_hr=0.6))
    assert "(0.60)" in text and "large enough" in text


@pytest.mark.parametrize("verdict,start", [("reduction", "The evidence shows"),
                                           ("increase", "The evidence shows")])
def test_clear_verdicts_have_no_power_clause(cfg, verdict, start):
    text = S.verdict_text(summary(verdict=verdict), cfg)
    assert text.startswith(start) and "detect" not in text


def test_not_estimable_verdict_gives_the_reason(cfg):
    s = summary(verdict="not_estimable", hr_available=False,
                reason="nobody in one of the groups reoffended in the follow-up")
    assert S.verdict_text(s, cfg).endswith("because nobody in one of the groups reoffended "
                                           "in the follow-up.")
    assert "could not be estimated" in S.certainty(s)
    assert "0.90" not in S.certainty(s)


@pytest.mark.parametrize("verdict,phrase", [("inconclusive", "it includes 1"),
                                            ("reduction", "entirely below 1"),
                                            ("increase", "entirely above 1")])
def test_certainty_follows_the_verdict(verdict, phrase):
    text = S.certainty(summary(verdict=verdict))
    assert phrase in text and "0.70 to 1.15" in text and text.count("(") == text.count(")")


def test_strength_leaves_out_what_was_not_estimated():
    text = S.strength(summary(evalue="–", mde_hr="–"))
    assert "E-value" not in text and "risk ratio" not in text and "80% power" not in text
    full = S.strength(summary())
    assert "risk ratio of 1.45" in full and "hazard ratio of 0.80" in full


def test_who_compared_says_the_matched_subset_when_some_are_unmatched(cfg):
    m = {"treated_n": "251", "matched_n": "176", "unmatched_n": "75",
         "unmatched_percent": "29.9%"}
    assert "176 of the 251 people who started" in S.who_compared(summary(), cfg, m)
    everyone = dict(m, unmatched_n="0", matched_n="251")
    assert S.who_compared(summary(n_treated="251"), cfg, everyone).startswith(
        "251 people who started")
    assert f"within {cfg.risk_set_window_days} days" in S.who_compared(summary(), cfg, m)


def test_matching_sentence_describes_the_unmatched_from_the_data():
    m = {"treated_n": "251", "matched_n": "176", "unmatched_n": "75",
         "unmatched_percent": "29.9%"}
    words = {"phrases": ["were older", "had more prior custody"], "score_direction": "lower"}
    text = S.matching(m, words)
    assert "on average they were older and had more prior custody" in text
    assert "chance of starting treatment was lower" in text
    assert "highest" not in S.matching(m, {"phrases": []})
    assert S.matching(None, None) == ""
    assert "Everyone who started treatment" in S.matching(dict(m, unmatched_n="0"), None)


def test_same_victim_and_interaction_never_print_dashes():
    r = {"same_victim": {"treated": "–", "comparison": "40.0%"},
         "interaction": [{"subgroup": "site", "p": "–"}, {"subgroup": "typology",
                                                          "p": "p = 0.020"}]}
    assert "–" not in S.same_victim(r) and "not published" in S.same_victim(r)
    text = S.interaction(r)
    assert "typology p = 0.020" in text and "No test could be made for site" in text
    assert "–" not in text
    assert S.interaction({"interaction": []}) == ""


def test_treated_only_reads_as_associations_and_gives_reasons():
    r = {"landmark_days": 180, "treated_only": [
        {"label": "Per 5 sessions attended", "available": False, "estimate": "not estimable",
         "reason": "everyone had the same exposure, so there is nothing to compare"},
        {"label": "Completers vs non-completers", "available": True, "estimate": "0.80",
         "ci": "0.46 to 1.41"}]}
    text = S.treated_only(r)
    assert "per 5 sessions attended: not estimable, because everyone had the same" in text
    assert "hazard ratio 0.80 (0.46 to 1.41)" in text
    assert "associations, not effects" in text and "0.00" not in text


def test_windows_note_names_the_windows_nobody_reached():
    r = {"proportions": [{"months": 12, "followed": True}, {"months": 24, "followed": False}]}
    assert "followed for 2 years" in S.windows_note(r, {})
    assert S.windows_note({"proportions": [{"months": 12, "followed": True}]}, {}) == ""


def test_methods_follow_the_configuration(cfg):
    text = S.methods_comparison(cfg)
    assert "days since qualifying offence" in text and "within 0.2 standard" in text
    fewer = dataclasses.replace(cfg, covariates=("age",), categorical=("sex",))
    text = S.methods_comparison(fewer)
    assert "days since qualifying" not in text and "day given age and sex, the weights" in text
    assert "random sample" in text  # max_controls_per_trial is set in the shipped config
    unbounded = dataclasses.replace(fewer, comparison=dataclasses.replace(
        fewer.comparison, max_controls_per_trial=None))
    assert "random sample" not in S.methods_comparison(unbounded)
    out = {"name": "violent", "proof": "recorded", "grace_days": 90,
           "custody_time_at_risk": True}
    text = S.methods_outcome(out, ("VAP",))
    assert "recorded by the police" in text and "count as time at risk" in text
    assert "90 days before the extraction date" in text and "VAP" in text


def test_statistics_sentence_is_punctuated_with_or_without_the_ph_test(cfg):
    with_p = S.methods_statistics({"ph_test_p": "p = 0.768"}, cfg)
    assert "(Grambsch–Therneau, p = 0.768);" in with_p
    without = S.methods_statistics({"ph_test_p": "–"}, cfg)
    assert "could not be computed" in without and " – " not in without
    assert "1 year and 2 years" in with_p


def test_helpers():
    assert S.join_words(["a"]) == "a" and S.join_words(["a", "b", "c"]) == "a, b and c"
    assert [S.months_label(m) for m in (12, 24, 18)] == ["1 year", "2 years", "18 months"]


def test_target_trial_table_follows_the_configuration(cfg):
    from pipeline.report.target_trial import specification

    rows = specification(cfg, "stalking or harassment")
    assert [r["element"] for r in rows] == [
        "Eligibility", "Treatment strategies", "Assignment", "Time zero", "Outcome",
        "Follow-up", "Causal contrast", "Analysis"]
    text = " ".join(r["target"] + " " + r["emulation"] for r in rows)
    assert f"({cfg.min_age}+)" in text and "people treated later are eligible" in text
    assert "caliper 0.2 SD" in text and "183 days" in text
    recorded = dataclasses.replace(cfg, proof="recorded", custody_time_at_risk=True)
    text = " ".join(r["emulation"] for r in specification(recorded, "any"))
    assert "recorded by the police" in text and "count as time at risk" in text


def _pp_row(hr: str, ci: str) -> dict:
    return {"analysis": "weighted_risk_sets_per_protocol", "hr": hr, "ci": ci}


def test_the_per_protocol_limitation_says_whether_it_is_shown_and_why_not():
    from pipeline.analysis.estimability import explain
    from pipeline.report.sentences import per_protocol

    shown = per_protocol({"hr_rows": [_pp_row("0.76", "0.74 to 0.79")]})
    assert "is shown beside it" in shown and "this extract" not in shown
    why = explain("over_size_bound")
    too_big = per_protocol({"hr_rows": [_pp_row("not estimable", why)]})
    assert "could not be estimated for this extract" in too_big and why in too_big
    assert "shown beside it" not in too_big
    absent = per_protocol({"hr_rows": []})
    assert "was not run for this extract" in absent and "shown beside it" not in absent
    withheld = per_protocol({"hr_rows": [_pp_row("withheld", "there were fewer than 10 "
                                                             "reoffences in a group")]})
    assert "withheld" in withheld and "fewer than 10" in withheld
