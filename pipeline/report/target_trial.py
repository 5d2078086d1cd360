"""The target-trial specification table of the report (Hernán & Robins; TARGET guideline).

Each row names one protocol element, the trial we would like to run and how this evaluation
emulates it, written from the configuration so that the table always describes what was
computed. The evaluation is a sequence of trials, one per treated index date.
"""

from __future__ import annotations

from pipeline.config import EvaluationConfig
from pipeline.report import wording as W
from pipeline.report.sentences import join_words, months_label


def specification(cfg: EvaluationConfig, outcome_name: str) -> list[dict[str, str]]:
    """Rows (element, target trial, emulation) of the specification table."""
    covariates = join_words([W.covariate_label(c) for c in (*cfg.covariates,
                                                            *cfg.categorical)])
    proof = (f"proven by conviction or caution within {cfg.grace_days} days"
             if cfg.proof == "proven" else "recorded by the police")
    windows = join_words([months_label(m) for m in cfg.followup_months])
    custody = ("days in custody do not count as time at risk" if not cfg.custody_time_at_risk
               else "days in custody count as time at risk")
    c = cfg.comparison
    caliper = f"caliper {c.caliper:g} SD of the logit" if c.caliper is not None else "no caliper"
    return [
        {"element": "Eligibility",
         "target": f"Adults ({cfg.min_age}+) at a study site with a qualifying stalking or "
                   f"harassment offence in the last {cfg.qualifying_lookback_days} days, alive, "
                   "at liberty, not yet referred to the clinic.",
         "emulation": "The same criteria applied on each treated person's index date, using "
                      "only information available that day; people treated later are "
                      "eligible until their own referral."},
        {"element": "Treatment strategies",
         "target": "Start the clinic's treatment now, versus do not start it now.",
         "emulation": "Treated: first attended treatment session on the index date. "
                      "Comparison: eligible people not treated that day (some start later)."},
        {"element": "Assignment",
         "target": "Random assignment.",
         "emulation": "Not random: within each risk set, comparison people are weighted by "
                      f"their odds of starting treatment given {covariates}, chosen so that "
                      "the weighted comparison people have the treated people's averages "
                      "(entropy balancing within risk sets); matching on a propensity score "
                      f"({caliper}) as a sensitivity analysis. Unmeasured differences may "
                      "remain."},
        {"element": "Time zero",
         "target": "Assignment.",
         "emulation": "The treated person's index date, for the treated person and every "
                      "member of their risk set (no immortal time)."},
        {"element": "Outcome",
         "target": f"First new {outcome_name} offence.",
         "emulation": f"First new {outcome_name} offence, {proof}; police-recorded (or "
                      "proven) offences as a sensitivity analysis."},
        {"element": "Follow-up",
         "target": f"From time zero to the outcome, for up to "
                   f"{months_label(max(cfg.followup_months))}.",
         "emulation": f"From the index date to the outcome, death or {cfg.grace_days} days "
                      f"before the extraction date; {custody}."},
        {"element": "Causal contrast",
         "target": "Intention to treat.",
         "emulation": "Intention to treat within each trial: comparison people keep their arm "
                      "even if they start treatment later. Describes everyone who started "
                      "treatment and had at least one eligible comparison person (ATT); the "
                      "matched sensitivity analysis describes only those who could be "
                      "matched. Per protocol as a further analysis: comparison people are "
                      "censored when they start treatment and the others re-weighted by the "
                      "inverse probability of not having started (IPCW)."},
        {"element": "Analysis",
         "target": "Compare the groups' reoffending.",
         "emulation": "Weighted Cox model over all trials with standard errors clustered by "
                      f"person across trials; Kaplan–Meier, risks at {windows} and restricted "
                      "mean time; sequential boundaries over monthly looks."},
    ]
