"""Sentences and footnotes of the report's Justice Data Lab-compatible block.

``publish_jdl`` applies disclosure control to the table of ``pipeline.analysis.jdl.jdl_rows``
(counts 1–9 become "<10"; a rate, average or difference resting on such counts, or on fewer
reoffenders than the policy's minimum, is withheld) and formats every value. The text
functions read only that protected document, so no sentence can print an unprotected count,
and the wording follows the house rules of ``sentences``: descriptive ("reoffended less",
"difference"), never causal, and a value that could not be estimated is said so with its
reason instead of a number.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline.analysis.estimability import explain
from pipeline.analysis.jdl import (
    ARMS,
    COUNT_COLUMNS,
    FOLLOWUP_DAYS,
    JDL_REASONS,
    MEASURABLE_DAYS,
    WAITING_DAYS,
)
from pipeline.config import EvaluationConfig
from pipeline.disclosure import DisclosurePolicy, is_suppressed, publish_count
from pipeline.report import wording as W

# the adjective before "offence"/"reoffending" ('' for any offence, which gets a suffix)
FAMILY_ADJECTIVES = {"stalking_harassment": "stalking or harassment ", "any": "",
                     "violence": "violent "}


def _names(family: str) -> tuple[str, str]:
    """(adjective, suffix): 'stalking or harassment ' and '', or '' and ' (any offence)'."""
    adj = FAMILY_ADJECTIVES.get(family, family.replace("_", " ") + " ")
    return adj, " (any offence)" if not adj else ""


# reasons that say only that nobody could be measured: shown even when counts are small
UNMEASURED = ("arm_empty", "no_followup_to_window")


def _why(reason: str) -> str:
    return JDL_REASONS.get(reason) or explain(reason)


def _fmt_freq(x: float | None, signed: bool = False) -> str:
    """Proven reoffences per person, two decimals; signed with a true minus for differences."""
    if not W.is_num(x):
        return "–"
    if not signed:
        return f"{x:.2f}"
    return f"{'−' if x < 0 else '+'}{abs(x):.2f}"


def _small(r: dict, policy: DisclosurePolicy, measure: str) -> str:
    """Why an arm's value must be withheld ('' if it may be published)."""
    n, k = int(r["n_measurable"]), int(r["n_reoffenders"])
    counts = [n, k, n - k] + ([int(r["n_offences"])] if measure == "frequency" else [])
    if k < policy.min_events_for_estimate:
        return f"fewer than {policy.min_events_for_estimate} people in a group reoffended"
    if any(is_suppressed(c, policy) for c in counts):
        return f"a count it rests on is below {policy.threshold}"
    return ""


def _cell(r: dict, measure: str, withheld: str) -> dict:
    """One formatted value: estimate and CI, or 'not estimable' / 'withheld' with a reason.

    Small counts take precedence over most reasons: "everyone in the group had the same
    outcome" about a group of fewer than ``threshold`` people would disclose their outcome."""
    if r["reason"] in UNMEASURED or (r["reason"] and not withheld):
        why = _why(r["reason"])
        return {"estimate": "not estimable", "ci": why, "available": False, "reason": why}
    if withheld:
        return {"estimate": "withheld", "ci": withheld, "available": False, "reason": withheld}
    diff = r["arm"] == "difference"
    if measure == "rate":
        fmt = W.fmt_pp if diff else W.fmt_pct
    else:
        def fmt(x):
            return _fmt_freq(x, signed=diff)
    return {"estimate": fmt(r["estimate"]), "ci": f"{fmt(r['lower'])} to {fmt(r['upper'])}",
            "available": True, "value": r["estimate"], "lower": r["lower"],
            "upper": r["upper"]}


def publish_jdl(rows: pd.DataFrame, policy: DisclosurePolicy) -> dict:
    """The protected block: {family: {"rate"|"frequency": {arm: cell}, "counts": {arm: {…}}}}.

    Counts are published with ``publish_count``; an arm's value is withheld when a count it
    rests on (people measured, reoffenders, non-reoffenders, and for the frequency proven
    reoffences) is suppressed or fewer than ``min_events_for_estimate`` people reoffended, and
    the difference is withheld when either arm is.
    """
    out: dict = {}
    for family, fam in rows.groupby("family", sort=False):
        by = {(r["measure"], r["arm"]): r for r in fam.to_dict("records")}
        block: dict = {"counts": {}}
        for arm in (*ARMS, "difference"):
            r = by[("rate", arm)]
            block["counts"][arm] = {c: publish_count(int(r[c]), policy) for c in COUNT_COLUMNS}
        for measure in ("rate", "frequency"):
            small = {a: _small(by[(measure, a)], policy, measure) for a in ARMS}
            cells = {a: _cell(by[(measure, a)], measure, small[a]) for a in ARMS}
            either = next((s for s in small.values() if s), "")
            cells["difference"] = _cell(by[(measure, "difference")], measure, either)
            block[measure] = cells
        out[str(family)] = block
    return out


def _direction(diff: dict, fewer: str, more: str) -> str:
    """Plain words for the difference's interval; descriptive, never causal."""
    lo, hi = diff.get("lower"), diff.get("upper")
    if W.is_num(hi) and hi < 0:
        return f" On this measure people who started treatment {fewer}; the interval excludes " \
               "no difference."
    if W.is_num(lo) and lo > 0:
        return f" On this measure people who started treatment {more}; the interval excludes " \
               "no difference."
    return " The interval includes no difference, so the difference could be due to chance."


def _diff_clause(diff: dict, sentence: bool = False) -> str:
    """The difference in brackets ('difference X, 95% …') or as a sentence ('The difference
    is X (95% …).'); withheld or not estimable with its reason."""
    if diff["available"]:
        if sentence:
            return (f"The difference is {diff['estimate']} (95% confidence interval "
                    f"{diff['ci']}).")
        return f"difference {diff['estimate']}, 95% confidence interval {diff['ci']}"
    verb = "is withheld" if diff["estimate"] == "withheld" else "could not be estimated"
    return f"{'The' if sentence else 'the'} difference {verb}, because {diff['reason']}" + (
        "." if sentence else "")


def _status(cell: dict, weighted: bool = False) -> str:
    """'was 12.5% (weighted)', 'is withheld, because …' or 'could not be estimated, because …'."""
    if cell["available"]:
        return f"was {cell['estimate']}" + (" (weighted)" if weighted else "")
    verb = "is withheld" if cell["estimate"] == "withheld" else "could not be estimated"
    return f"{verb}, because {cell['reason']}"


def _compare(what: str, cells: dict, opening: str, fewer: str, more: str) -> str:
    """Both groups and their difference in one sentence, or group by group when a value is
    missing; followed by the direction of the difference when it was estimated."""
    t, c, d = cells["treated"], cells["comparison"], cells["difference"]
    if t["available"] and c["available"]:
        text = (f"{opening} {t['estimate']} {what}, against {c['estimate']} (weighted) in the "
                f"comparison group ({_diff_clause(d)}).")
    else:
        text = (f"{opening} the figure {_status(t)}; for the comparison group it "
                f"{_status(c, weighted=True)}. " + _diff_clause(d, sentence=True))
    return text + (_direction(d, fewer, more) if d["available"] else "")


def rate_sentence(block: dict, family: str, treated: str = "people who started treatment"
                  ) -> str:
    """'Of the N people who started treatment and could be followed …, X% were proven …'."""
    adj, suffix = _names(family)
    n = block["counts"]["treated"]["n_measurable"]
    if n == "0":
        return (f"None of the {treated} has yet been followed for the full year and waiting "
                f"period, so their one-year proven {adj}reoffending rate{suffix} cannot be "
                "given.")
    opening = (f"Of the {n} {treated} and could be followed for the full year and waiting "
               f"period, for proven {adj}reoffending{suffix} within a year")
    if block["rate"]["treated"]["available"] and block["rate"]["comparison"]["available"]:
        opening = (f"Of the {n} {treated} and could be followed for the full year and "
                   "waiting period,")
    what = "offence of any kind" if suffix else f"{adj}offence"
    return _compare(f"were proven to have committed a new {what} within a year",
                    block["rate"], opening, "reoffended less", "reoffended more")


def frequency_sentence(block: dict, family: str) -> str:
    """Proven reoffences per person (every one, not only the first), by group."""
    adj, suffix = _names(family)
    f = block["frequency"]
    if not (f["treated"]["available"] or f["comparison"]["available"]
            or f["difference"]["available"]):
        return ""
    opening = f"For the average number of proven {adj}reoffences{suffix} per person,"
    if f["treated"]["available"] and f["comparison"]["available"]:
        opening = "On average they had"
    return _compare(f"proven {adj}reoffences{suffix} per person", f, opening,
                    "had fewer proven reoffences", "had more proven reoffences")


def not_yet_sentence(block: dict) -> str:
    """People left out because their year and waiting period have not ended yet."""
    t = block["counts"]["treated"]["n_not_yet_measurable"]
    c = block["counts"]["comparison"]["n_not_yet_measurable"]
    if t == "0" and c == "0":
        return ""
    return (f"A further {t} people who started treatment and {c} comparison people have not "
            "yet been followed for the full year and waiting period; they are counted but not "
            "included.")


def jdl_sentences(published: dict, treated: str = "people who started treatment"
                  ) -> dict[str, str]:
    """One paragraph per family (main family first as given), from the protected block."""
    out = {}
    for family, block in published.items():
        parts = [rate_sentence(block, family, treated), frequency_sentence(block, family),
                 not_yet_sentence(block)]
        out[family] = " ".join(p for p in parts if p)
    return out


def jdl_footnotes(published: dict, cfg: EvaluationConfig, extraction: dt.date,
                  policy: DisclosurePolicy) -> list[str]:
    """What exactly is computed: definition, waiting period, calendar time and custody,
    weights, clustering, disclosure. Counts come from the protected main-family block."""
    counts = published.get(cfg.main_family, next(iter(published.values()), {})).get(
        "counts", {})
    both = counts.get("difference", {})
    custody = both.get("n_with_custody_days", "–")
    released = both.get("n_started_at_release", "0")
    notes = [
        "Proven reoffending follows the Ministry of Justice (Justice Data Lab) definition: an "
        f"offence committed in the {FOLLOWUP_DAYS} days after the start of follow-up and "
        "proven by a conviction or caution within that year or a further six-month waiting "
        f"period ({WAITING_DAYS} days). Follow-up starts on the index date (for comparison "
        "people, the index date of the treated person they were chosen for). The rate is the "
        "share of people with at least one proven reoffence; the frequency counts every "
        "proven reoffence, not only the first, per person.",
        f"Only people whose year and waiting period ({MEASURABLE_DAYS} days) ended by the "
        f"extraction date ({extraction.isoformat()}) are included; the others are counted as "
        "not yet measurable. This differs from the survival analysis, which counts an offence "
        f"only if proven within {cfg.grace_days} days of being committed and follows people "
        f"until {cfg.grace_days} days before the extraction date.",
        "The year is calendar time: days in custody are not taken out and offences committed "
        f"in custody count (these are rare). {custody} of the people included spent some of "
        "their year in custody; "
        + ("the survival analysis counts custody time too. " if cfg.custody_time_at_risk else
           "the survival analysis instead counts time at liberty only. ") +
        "Someone in custody on the index date would start their year on release, as in the "
        "Ministry of Justice measure"
        + (f" ({released} people)." if released != "0" else " (nobody was)."),
        "People who died during the year remain in the group (no adjustment for deaths).",
        "Shares and averages are weighted with the analysis weights: each treated person "
        "counts once and the comparison people of one treated person's trial share a total "
        "weight of one, so that the comparison group resembles the treated group. Counts of "
        "people and reoffences are unweighted, and a person in several trials is counted "
        "once.",
        "95% confidence intervals are Wald intervals with a linearisation (sandwich) variance "
        "robust to clustering by person: a person who is a comparison person in several "
        "trials (and perhaps treated later) forms one cluster, so their outcomes are not "
        "treated as independent. The difference (treated minus comparison) "
        "and its interval come from a weighted least-squares regression of the outcome on "
        "group with cluster-robust standard errors. A group's limits are cut at 0 (and at "
        "100% for a rate). The difference describes the groups; it is not on its own an "
        "effect of treatment.",
        (f"Counts from 1 to {policy.threshold - 1} are shown as {policy.suppressed_label}; a "
         "share, average or difference resting on such a count, or on fewer than "
         if policy.threshold > 1 else "A share, average or difference resting on fewer than ")
        + f"{policy.min_events_for_estimate} people who reoffended in a group, is withheld.",
    ]
    return notes


def jdl_text(rows: pd.DataFrame, cfg: EvaluationConfig, extraction: dt.date,
             policy: DisclosurePolicy) -> dict:
    """Protected block, sentences and footnotes for the report (one call for the lead)."""
    published = publish_jdl(rows, policy)
    return {"published": published, "sentences": jdl_sentences(published),
            "footnotes": jdl_footnotes(published, cfg, extraction, policy)}
