"""Sentences of the funder report that describe the data, generated from the numbers.

The template lays out fixed headings, definitions and a glossary; every sentence that states
something about this extract (what was found, who was compared, which characteristics were
adjusted for, why an estimate is missing) is written here from the configuration and the
numbers document, so it cannot drift from what was computed. Every function is pure: numbers
document (and configuration) in, text out. Counts in the document have already passed
disclosure control; no function here derives a new count.
"""

from __future__ import annotations

from pipeline.config import EvaluationConfig
from pipeline.report import wording as W
from pipeline.report.history_text import (
    effect_measures,
    months_label,
    power_text,
    sequential_text,
)


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def verdict_text(summary: dict, cfg: EvaluationConfig, seq: dict | None = None) -> str:
    """The headline: the verdict and, when inconclusive, whether the evaluation was large
    enough to detect the effect the programme hopes for (from the sequential power when the
    plan's history is given, else from the detectable hazard ratio)."""
    verdict = summary["verdict"]
    if verdict == "not_estimable":
        why = summary["hr"].get("reason")
        return ("The effect could not be estimated from this extract"
                + (f", because {why}." if why else "."))
    base = W.VERDICT_TEXT[verdict]
    if verdict.startswith("some_evidence") and seq and seq.get("why_not_clear"):
        return (f"{base} The pre-specified analysis crossed the evaluation's boundary, but "
                f"{join_words(seq['why_not_clear'])}, so the evidence is not yet clear.")
    if verdict != "inconclusive":
        return base
    if seq:
        return base + " " + power_text(seq)
    mde = summary.get("mde_value")
    if not W.is_num(mde):
        return base
    hoped = W.fmt_ratio(cfg.plausible_hr)
    if mde >= cfg.plausible_hr:  # a hazard ratio of the hoped-for size was detectable
        return (f"{base} The evaluation was large enough to detect a hazard ratio of "
                f"{W.fmt_ratio(mde)} or further from 1 (80% power), including the effect the "
                f"programme hopes for ({hoped}); a smaller effect cannot be ruled out.")
    return (f"{base} So far the evaluation can only detect a hazard ratio of "
            f"{W.fmt_ratio(mde)} or further from 1 (80% power), a larger effect than the "
            f"programme hopes for ({hoped}): more people need to start treatment and be "
            "followed up before an effect of that size could be shown.")


def certainty(summary: dict) -> str:
    """What the hazard ratio and its interval say."""
    hr = summary["hr"]
    if not hr["available"]:
        return (f"The hazard ratio could not be estimated from this extract, because "
                f"{hr.get('reason', 'the model could not be fitted')}.")
    text = (f"The hazard ratio (how often treated people reoffended at any moment, relative to "
            f"the comparison group) is {hr['estimate']} (95% confidence interval {hr['ci']}; "
            f"{hr['p']}). A value below 1 means fewer reoffences with treatment. The "
            "confidence interval is the range of effects consistent with the data: ")
    lo, hi, verdict = hr.get("lower"), hr.get("upper"), summary["verdict"]
    repeated = (" Because the evaluation looks at the data again every month, an interval that "
                "excludes 1 at one look is not enough on its own (see below).")
    if verdict.endswith("reduction"):  # a boundary crossing implies the interval excludes 1
        return text + "it lies entirely below 1."
    if verdict.endswith("increase"):
        return text + "it lies entirely above 1."
    if W.is_num(hi) and hi < 1:
        return text + "it lies entirely below 1." + repeated
    if W.is_num(lo) and lo > 1:
        return text + "it lies entirely above 1." + repeated
    return text + "it includes 1, so \"no difference\" cannot be ruled out."


def who_compared(summary: dict, cfg: EvaluationConfig, matching: dict | None = None) -> str:
    """Who the main estimate describes: everyone who started, or those who could be matched."""
    how = summary["analysis_label"].replace(" (main analysis)", "")
    if summary["analysis"] == "matched" and matching and matching["unmatched_n"] not in (
            "0", 0):
        who = (f"{summary['n_treated']} of the {matching['treated_n']} people who started "
               "treatment (those who could be matched)")
    else:
        who = f"{summary['n_treated']} people who started treatment"
    if summary["analysis"] == "weighted_risk_sets":
        compared = (f"{who} and comparable people who had not started it on the same day "
                    f"({summary['n_comparison']} person-days of eligibility, weighted so that "
                    "each treated person's comparison group resembles them). ")
    else:
        compared = (f"{who} and {summary['n_comparison']} comparable people who did not "
                    f"({how.lower()}). ")
    return (compared +
            "Comparison people were chosen on the day each treated person started, from people "
            f"at the same site with a qualifying offence within "
            f"{cfg.risk_set_window_days} days of the same time before that day, who were "
            "free, alive, adults and not yet referred.")


def strength(summary: dict) -> str:
    """Maryland level, E-value and detectable effect, each only when it was estimated."""
    parts = [f"Strength of evidence: level {summary['sms_level']} on the five-level Maryland "
             f"Scientific Methods Scale, because this is {summary['sms_reason']}."]
    if summary.get("evalue", "–") != "–":
        parts.append(
            "An unmeasured difference between the groups would have to be associated with "
            f"both treatment and reoffending by a risk ratio of {summary['evalue']} each to "
            f"explain the estimate away ({summary['evalue_ci']} for the confidence limit "
            "closest to no effect).")
    if summary.get("mde_hr", "–") != "–":
        parts.append(
            f"With this many people the evaluation could reliably (80% power) detect a "
            f"hazard ratio of {summary['mde_hr']} or further from 1; smaller effects may be "
            "missed.")
    return " ".join(parts)


def matching(m: dict | None, unmatched: dict | None) -> str:
    """How many treated people were matched and, from the data, how the unmatched differ."""
    if not m:
        return ""
    text = (f"Of {m['treated_n']} treated people, {m['matched_n']} were matched to a "
            "comparison person from their own risk set.")
    if m["unmatched_n"] in ("0", 0):
        return text + " Everyone who started treatment is in the matched analysis."
    share = f" ({m['unmatched_percent']})" if m["unmatched_percent"] != "–" else ""
    text += (f" {m['unmatched_n']}{share} had no comparison person close enough in their "
             "characteristics and are left out of the matched analysis, which therefore "
             "describes treated people for whom comparable untreated people exist.")
    if unmatched:
        if unmatched.get("phrases"):
            text += (" Compared with matched treated people, on average they "
                     f"{join_words(unmatched['phrases'])}.")
        score = unmatched.get("score_direction")
        if score:
            text += (f" Their estimated chance of starting treatment was {score} on average "
                     "than that of the matched.")
    return text + " The weighted analysis, which keeps everyone, is shown beside it."


def same_victim(results: dict) -> str:
    """Share of first reoffences against the same victim, where estimable in both arms."""
    sv = results["same_victim"]
    ok = [arm for arm in ("treated", "comparison")
          if sv.get(arm) not in (None, "–", "not estimable", "withheld", "not estimated")]
    if len(ok) < 2:
        return ("The share of first reoffences against the victim of the qualifying offence "
                "is not published: there were too few reoffences in at least one group.")
    return (f"Of the first reoffences, {sv['treated']} (treated) and {sv['comparison']} "
            "(comparison) were against the victim of the qualifying offence; the rest were "
            "against someone new.")


def per_protocol(results: dict) -> str:
    """The Limitations clause on the per-protocol analysis: shown beside the main one, or why
    it is not (not estimable for this extract, or not run)."""
    row = next((r for r in results.get("hr_rows", [])
                if r["analysis"] == "weighted_risk_sets_per_protocol"), None)
    what = ("a per-protocol analysis, which stops following comparison people when they start "
            "and re-weights those who do not,")
    if row is not None and row["hr"] not in ("not estimable", "not estimated", "withheld"):
        return (f"{what} is shown beside it and rests on the further assumption that who "
                "starts later is explained by the measured characteristics.")
    if row is not None and row["hr"] == "withheld":
        return (f"{what} is withheld for this extract ({row['ci']}); the main comparison does "
                "not depend on it.")
    if row is not None and row["hr"] == "not estimable":
        return (f"{what} could not be estimated for this extract ({row['ci']}), so how much "
                "later starts among comparison people matter is not shown.")
    return (f"{what} was not run for this extract, so how much later starts among comparison "
            "people matter is not shown.")


def interaction(results: dict) -> str:
    """Subgroup interaction tests that could be computed, and those that could not."""
    rows = results.get("interaction", [])
    done = [r for r in rows if r["p"] != "–"]
    missing = [r["subgroup"] for r in rows if r["p"] == "–"]
    text = ""
    if done:
        def one(r: dict) -> str:
            holm = r.get("p_holm", "–")
            return f"{r['subgroup']} {r['p']}" + (f" (Holm-adjusted {holm.removeprefix('p ')})"
                                                  if holm != "–" else "")
        text = ("Exploratory tests of whether the hazard ratio differs between subgroups: "
                + join_words([one(r) for r in done]) + ". With several tests, one small "
                "p-value can arise by chance, so each p-value is also shown adjusted for the "
                "number of tests (Holm); subgroup results are a prompt for further study, not "
                "a finding on their own, and never the headline.")
    if missing:
        text += (" " if text else "") + (
            f"No test could be made for {join_words(missing)}: within those subgroups the "
            "treatment contrast could not be estimated in at least two levels.")
    return text


def treated_only(results: dict) -> str:
    """Associations within the treated group from the landmark (never read as effects)."""
    rows = results.get("treated_only", [])
    if not rows:
        return ""
    parts = []
    for r in rows:
        if r["available"]:
            parts.append(f"{r['label'].lower()}: hazard ratio {r['estimate']} ({r['ci']})")
        else:
            parts.append(f"{r['label'].lower()}: {r['estimate']}, because {r['reason']}")
    return (f"Within the treated group, counting from {results['landmark_days']} days after "
            "the start of treatment (so that completers are not credited with the time they "
            f"needed to complete): {'; '.join(parts)}. These are associations, not effects of "
            "completing or of more sessions: people who complete or attend more may differ in "
            "ways that also affect reoffending.")


def windows_note(results: dict, doc_outcome: dict) -> str:
    """Which follow-up windows nobody (in an arm) has been followed for yet."""
    missing = sorted({p["months"] for p in results.get("proportions", [])
                      if not p.get("followed", True)})
    if not missing:
        return ""
    labels = join_words([months_label(m) for m in missing])
    return (f"Nobody in at least one group has yet been followed for {labels} after the index "
            "date, so the shares for that window cannot be estimated from this extract.")


def windows_method(results: dict) -> str:
    """How the shares in the windows table were computed (they differ by analysis)."""
    if results.get("analysis") == "matched":
        return ("Shares reoffending are among matched people followed up for the whole "
                "window (people followed for less are left out of that window's share).")
    if results.get("analysis") == "weighted_risk_sets":
        return ("Shares reoffending are weighted shares among people followed up for the "
                "whole window (people followed for less are left out of that window's share); "
                "the extra time without reoffending comes from the weighted survival curves.")
    return ("Shares reoffending are read off the Kaplan–Meier curves, so people not yet "
            "followed for the whole window count for the time they were followed.")


def methods_outcome(outcome: dict, family_codes: tuple[str, ...]) -> str:
    """The outcome definition from the configuration."""
    proof = (f"counted when proven by conviction or caution within {outcome['grace_days']} "
             "days of being committed (police-recorded offences in a sensitivity analysis)"
             if outcome["proof"] == "proven" else
             "counted when recorded by the police (proven offences in a sensitivity analysis)")
    text = (f"The first new {outcome['name']} offence after the index date (offence codes "
            f"{', '.join(family_codes)}), {proof}. Follow-up ends at death, or "
            f"{outcome['grace_days']} days before the extraction date so that recent offences "
            "have had time to be proven.")
    if not outcome["custody_time_at_risk"]:
        text += " Days in custody after the index date are not counted as time at risk."
    else:
        text += " Days in custody after the index date count as time at risk."
    return text


def methods_comparison(cfg: EvaluationConfig) -> str:
    """The adjustment as configured: covariates, caliper, ratio, replacement."""
    names = [W.covariate_label(c) for c in (*cfg.covariates, *cfg.categorical)]
    m = cfg.comparison
    caliper = (f"within {m.caliper:g} standard deviations" if m.caliper is not None
               else "with no caliper")
    ratio = "one comparison person" if m.k == 1 else f"up to {m.k} comparison people"
    reuse = "re-using comparison people where needed" if m.replace else "without re-using anyone"
    sampled = ("" if m.max_controls_per_trial is None else
               f" Where a risk set holds more than about {m.max_controls_per_trial} people, a "
               "random sample of it is used, each sampled person standing for the people "
               "they represent.")
    return ("On each treated person's index date, the eligible people at the same site form a "
            f"risk set (people treated later included until they start).{sampled} The main "
            "analysis weights each risk set towards the treated person: each comparison "
            "person counts in proportion to their odds of being the one who starts treatment "
            f"that day given {join_words(names) or 'no characteristics'}, the weights of a "
            "risk set adding up to one treated person, with the odds chosen so that the "
            "weighted comparison people, pooled over all risk sets, have exactly the treated "
            "people's average characteristics (entropy balancing within risk sets). As "
            "sensitivity analyses, each treated person is matched to "
            f"{ratio} nearest on the logit of a propensity score ({caliper}), {reuse} (this "
            "describes only the treated people who could be matched), and inverse probability "
            "weighting is applied to one comparison date per person. Balance is checked with "
            "standardised mean differences, variance ratios and Kolmogorov–Smirnov statistics "
            f"(threshold {m.balance_threshold:g} for the standardised difference).")


def methods_statistics(results: dict, cfg: EvaluationConfig) -> str:
    """The statistics, with the proportional-hazards test result if it was computed."""
    windows = join_words([months_label(m) for m in cfg.followup_months])
    text = ("Kaplan–Meier curves with log–log 95% confidence bands; Cox proportional-hazards "
            "models with standard errors clustered by person (a person can be a comparison in "
            "several risk sets and later treated); restricted mean survival "
            f"time; risk differences and ratios at {windows}.")
    p = results.get("ph_test_p", "–")
    if p != "–":
        text += (f" The proportional-hazards assumption for treatment was tested "
                 f"(Grambsch–Therneau, {p}); a small p-value would mean the effect changes "
                 "over time, and the hazard ratio is then an average over follow-up.")
    else:
        text += " The proportional-hazards test could not be computed for this extract."
    return text + (" Confidence intervals are 95%. Statistical methods are tested against "
                   "published reference values and against synthetic data with a known effect.")


def build_text(doc: dict, cfg: EvaluationConfig, unmatched: dict | None = None) -> dict:
    """Every data-describing sentence of the report, keyed for the template."""
    text = {"methods_outcome": methods_outcome(doc["outcome"],
                                               cfg.families.get(cfg.main_family, ())),
            "methods_comparison": methods_comparison(cfg)}
    if doc["status"] != "ok":
        return text
    s, r = doc["summary"], doc["results"]
    seq = doc.get("sequential")
    text.update({
        "verdict": verdict_text(s, cfg, seq), "certainty": certainty(s),
        "sequential": sequential_text(seq) if seq else "",
        "effect_measures": effect_measures(s),
        "who_compared": who_compared(s, cfg, doc["comparability"].get("matching")),
        "strength": strength(s),
        "matching": matching(doc["comparability"].get("matching"), unmatched),
        "same_victim": same_victim(r), "interaction": interaction(r),
        "per_protocol": per_protocol(r),
        "treated_only": treated_only(r), "windows_note": windows_note(r, doc["outcome"]),
        "windows_method": windows_method(r),
        "methods_statistics": methods_statistics(r, cfg)})
    return {k: _sentence_case(v) for k, v in text.items()}
