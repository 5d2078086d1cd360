"""Named degenerate shapes of the synthetic world, for the degenerate-data battery (issue 9).

Real extracts arrive with shapes the plausible generator never makes: one site, an outcome family
that never occurs, nobody completing, every person followed for less than two years, a covariate
that determines treatment. Each shape here is a named preset of lower-level ``SynthParams`` knobs,
so that a test (``SynthParams(shape="one_site")``) or a person (``python -m pipeline.synth --shape
one_site``) can ask for it by name. A preset sets only knobs left at their default values, so an
explicit argument always wins. The "default" shape is the plausible world, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Shape:
    """What a shape is for, and the ``SynthParams`` knobs it sets."""

    description: str
    overrides: dict = field(default_factory=dict)


NO_VIOLENCE = (0.60 / 0.88, 0.10 / 0.88, 0.0, 0.18 / 0.88)  # FAMILY_PROBS without violence

SHAPES: dict[str, Shape] = {
    "default": Shape("the plausible world (DESIGN.md), unchanged"),
    "one_site": Shape("every person lives at SITE_A: site is constant, no stratification by site",
                      {"site_probs": (1.0, 0.0, 0.0, 0.0, 0.0)}),
    "site_without_comparison": Shape(
        "SITE_D is small and every person there is referred and starts treatment, so its "
        "treated people have (almost) no comparison pool",
        {"site_probs": (0.34, 0.33, 0.30, 0.01, 0.02), "treat_all_sites": ("SITE_D",)}),
    "no_violence": Shape("no new violence offence in either arm: the violence family has no "
                         "events at all", {"family_probs": NO_VIOLENCE}),
    "no_violence_treated": Shape("no violence offence after a treated person's index date: the "
                                 "violence family has no events in the treated arm",
                                 {"treated_family_probs": NO_VIOLENCE}),
    "no_events": Shape("nobody offends again: no events in any family or arm",
                       {"untreated_one_year_risk": 0.0}),
    "everyone_reoffends": Shape(
        "offending is near certain and every offence is convicted promptly without custody: "
        "(almost) every person has an event, few are censored",
        {"untreated_one_year_risk": 0.99, "outcome_probs": (1.0, 0.0, 0.0, 0.0),
         "custody_share_of_convictions": 0.0}),
    "deaths_only": Shape("nobody offends again and mortality is high: deaths are the only ends "
                         "of follow-up besides the extraction date",
                         {"untreated_one_year_risk": 0.0, "annual_mortality": 0.25}),
    "custody_all_followup": Shape(
        "each person's qualifying offence brings custody from the day after their (would-be) "
        "first treatment session until after extraction: treated people have one day at "
        "liberty, comparison people little",
        {"custody_from_first_session": True}),
    "no_completers": Shape("nobody completes the programme", {"completion_share": 0.0}),
    "all_complete": Shape("every starter completes (20 sessions offered)",
                          {"completion_share": 1.0}),
    "uniform_dose": Shape("every starter is offered 12 sessions and attends each one: the dose "
                          "is constant", {"uniform_sessions": 12, "dna_share": 0.0}),
    "short_followup": Shape(
        "the extraction date falls 25 months after the first index date: nobody can be followed "
        "for 24 months (after the grace period); more referrals keep the cohort above minimum",
        {"extraction_date": dt.date(2021, 7, 1), "referral_share": 0.3}),
    "all_male": Shape("every person is male: sex is constant in both arms",
                      {"male_share": 1.0}),
    "treated_male_only": Shape("only men are referred: sex is constant among the treated",
                               {"referral_sex": "M"}),
    "no_prior_custody": Shape("no conviction leads to custody: prior custody is constant (no) in "
                              "both arms", {"custody_share_of_convictions": 0.0}),
    "separation": Shape("only people with a prior violence offence are referred: the covariate "
                        "separates treated from comparison people in the propensity model",
                        {"referral_requires_prior_violence": True, "referral_share": 0.7}),
    "min_treated": Shape("exactly 60 treated people (the default minimum) enter the main cohort",
                         {"n_treated": 60, "referral_share": 0.3}),
    "below_min_treated": Shape("exactly 59 treated people enter the main cohort: one fewer than "
                               "the default minimum", {"n_treated": 59, "referral_share": 0.3}),
    "singleton_subgroups": Shape(
        "exactly one treated person has Stalking Risk Profile type 'predatory' and exactly one a "
        "'professional' victim relationship; nobody else has either: subgroups of size 1",
        {"singleton_subgroups": True}),
}
