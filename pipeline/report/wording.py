"""Plain-language wording of results for funders: formats, verdicts and evidence strength.

The wording depends on the evidence, never on what anyone hopes: a confidence interval that
excludes no effect in either direction is "inconclusive", with an explanation that this is not
proof of no effect.
"""

from __future__ import annotations

import math

DAYS_PER_MONTH = 365.25 / 12


def is_num(x) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def fmt_ratio(x) -> str:
    return f"{x:.2f}" if is_num(x) else "–"


def fmt_pct(x, decimals: int = 1) -> str:
    return f"{100 * x:.{decimals}f}%" if is_num(x) else "–"


def fmt_pp(x) -> str:
    """A difference of proportions in percentage points with sign ('−5.2 points')."""
    if not is_num(x):
        return "–"
    sign = "−" if x < 0 else "+"
    return f"{sign}{abs(100 * x):.1f} points"


def fmt_months(days) -> str:
    """Days as months with one decimal; a value that rounds to zero is '0.0', never '-0.0'."""
    if not is_num(days):
        return "–"
    return f"{days / DAYS_PER_MONTH + 0.0:.1f}".replace("-0.0", "0.0")


def fmt_p(p) -> str:
    if not is_num(p):
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(hr: float, lower: float, upper: float) -> str:
    """'reduction', 'increase' or 'inconclusive' from a hazard ratio's 95% CI."""
    if not all(is_num(v) for v in (hr, lower, upper)):
        return "not_estimable"
    if upper < 1:
        return "reduction"
    if lower > 1:
        return "increase"
    return "inconclusive"


VERDICT_TEXT = {
    "reduction": ("The evidence shows that people who started treatment reoffended less than "
                  "comparable people who did not."),
    "some_evidence_reduction": ("There is some evidence that people who started treatment "
                                "reoffended less than comparable people who did not."),
    "some_evidence_increase": ("There is some evidence that people who started treatment "
                               "reoffended more than comparable people who did not. This needs "
                               "review with the clinic."),
    "increase": ("The evidence shows that people who started treatment reoffended more than "
                 "comparable people who did not. This needs urgent review with the clinic."),
    "inconclusive": ("The results are inconclusive: the difference between the groups could be "
                     "due to chance, which does not mean the programme has no effect."),
    "not_estimable": "The effect could not be estimated from this extract.",
}


def natural_frequency_sentence(risk_treated: float, risk_comparison: float, months: int,
                               outcome: str) -> str:
    """'For any 100 people like those treated, N reoffended within a year, compared with M …'."""
    if not (is_num(risk_treated) and is_num(risk_comparison)):
        return ""
    window = "a year" if months == 12 else f"{months // 12} years" if months % 12 == 0 \
        else f"{months} months"
    n_t, n_c = round(100 * risk_treated), round(100 * risk_comparison)
    return (f"For any 100 people like those treated, {n_t} committed a new {outcome} offence "
            f"within {window}, compared with {n_c} of 100 comparable people who were not "
            "treated.")


def maryland_level(adjusted: bool, balanced: bool, matched_in_time: bool) -> tuple[int, str]:
    """Maryland Scientific Methods Scale level of the design and the reason."""
    if adjusted and balanced and matched_in_time:
        return 3, ("a comparison group made alike on measured characteristics (by weighting "
                   "or matching), in calendar time and time since offence, with good "
                   "balance; not level 4 or 5 because "
                   "treatment was not allocated at random and unmeasured differences may remain")
    if adjusted:
        return 2, ("an adjusted comparison, but some measured characteristics remain "
                   "imbalanced after adjustment")
    return 2, "an unadjusted comparison of treated and untreated groups"


COVARIATE_LABELS = {
    "age": "age", "sex": "sex", "site": "site", "days_since_qualifying":
    "days since qualifying offence", "victim_relationship": "relationship to victim",
    "prior_sh": "prior stalking/harassment offences", "prior_violence":
    "prior violent offences", "prior_other": "prior other offences", "prior_sh_convictions":
    "prior stalking/harassment convictions", "prior_custody": "prior custody",
    "ethnicity_group": "ethnicity",
}


def covariate_label(name: str) -> str:
    """Readable label for a covariate or one level of it ('victim_relationship_ex_partner' →
    'relationship to victim: ex partner')."""
    for key in sorted(COVARIATE_LABELS, key=len, reverse=True):
        if name == key:
            return COVARIATE_LABELS[key]
        if name.startswith(key + "_") or name.startswith(key + "["):
            level = name[len(key) + 1:].strip("[]").removeprefix("T.")
            return f"{COVARIATE_LABELS[key]}: {level.replace('_', ' ')}"
    return name.replace("_", " ")
