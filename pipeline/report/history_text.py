"""Sentences about the sequential plan: boundary, repeated CI, power, effect measures.

Pure functions of the numbers document (already disclosure-controlled), kept apart from
``sentences.py`` so each module stays small; ``sentences.build_text`` calls them.
"""

from __future__ import annotations


def months_label(months: int) -> str:
    """'1 year', '2 years', '18 months'."""
    if months == 12:
        return "1 year"
    return f"{months // 12} years" if months % 12 == 0 else f"{months} months"


def power_text(seq: dict) -> str:
    """Whether the evaluation could have shown, by now and by the end, the hoped-for effect."""
    p = seq["power"]
    if seq.get("after_final"):
        return (f"The planned final analysis has been made; it had {p['power_final']} power "
                f"to show a hazard ratio of {p['assumed_hr']}, the effect the programme hopes "
                "for.")
    return (f"If treatment had the effect the programme hopes for (hazard ratio "
            f"{p['assumed_hr']}), the chance that the evaluation would have shown it by now is "
            f"{p['power_by_now']}; by the planned final analysis ({seq['planned_events_n']} "
            f"reoffences) it is {p['power_final']}, and the smallest effect it can then show "
            f"with {p['power_target']} power is a hazard ratio of {p['detectable_final']}.")


def sequential_text(seq: dict) -> str:
    """How the monthly looks are allowed for: boundary, repeated CI, decision, plan changes."""
    kind = {"obrien_fleming": "O'Brien–Fleming", "pocock": "Pocock"}[seq["spending"]]
    text = ("Each monthly extract is another look at accumulating data, so the verdict uses "
            f"a pre-specified boundary (Lan–DeMets {kind}-type error spending, two-sided "
            f"{seq['alpha']:.0%} over all looks) rather than a single 95% interval. ")
    if seq["after_final"]:
        text += ("The planned final analysis has already been made; this extract updates the "
                 "estimate but is not a further test.")
    else:
        text += (f"This is look {seq['look']}, with information worth {seq['events_n']} of "
                 f"the planned {seq['planned_events_n']} reoffences "
                 f"({seq['information_percent']} of the planned information; for a weighted "
                 "comparison, the reoffences a one-to-one comparison would need for the same "
                 "precision). ")
        if seq["boundary_low"] != "none":
            text += (f"At this look a reduction is shown only if the hazard ratio is below "
                     f"{seq['boundary_low']} (an increase: above {seq['boundary_high']}).")
        else:
            text += "At this look so little error may be spent that no boundary can be crossed."
        if seq["rci"] != "–":
            text += (f" The repeated confidence interval, which allows for every look, is "
                     f"{seq['rci']}.")
    if seq["decided_at_look"]:
        text += (f" The boundary was crossed at the look of {seq['decided_at_date']}; that "
                 "conclusion stands.")
    for c in seq["plan_changes"]:
        text += (f" The analysis plan was changed before the look of {c['extraction_date']} "
                 f"(plan {c['from']} to {c['to']}); earlier looks are shown as they were "
                 "evaluated.")
    return text


def effect_measures(summary: dict) -> str:
    """The risk difference and restricted mean time printed beside the hazard ratio."""
    parts = []
    rd, rmst = summary.get("risk_difference", {}), summary.get("rmst", {})
    if rd.get("available"):
        parts.append(f"the difference in the share reoffending within "
                     f"{months_label(summary['months'])} is {rd['estimate']} (95% confidence "
                     f"interval {rd['ci']})")
    if rmst.get("available"):
        parts.append(f"within {months_label(summary['rmst_months'])}, treated people spent "
                     f"{rmst['estimate']} more free of reoffending on average (95% confidence "
                     f"interval {rmst['ci']}; negative means less)")
    if not parts:
        return ""
    return "Beside the hazard ratio: " + "; ".join(parts) + "."
