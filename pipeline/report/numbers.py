"""The report's single source of numbers: one JSON document per extract.

Every figure, table and sentence of the funder report reads from this document; counts in it
have already passed disclosure control (strings such as "1,234" or "<10"), estimates built on
too few events are withheld, and every value is formatted here so that the PDF prints exactly
what the JSON holds.
"""

from __future__ import annotations

import duckdb
import numpy as np

from pipeline.config import EvaluationConfig
from pipeline.disclosure import (
    DisclosurePolicy,
    publish_count,
)
from pipeline.plan.multiplicity import holm
from pipeline.plan.spec import HR_SOURCES
from pipeline.report import wording as W
from pipeline.report.estimate_format import (
    NOT_ESTIMATED,
    Estimates,
    _effect,
    _proportions,
    _withheld,
)
from pipeline.report.history import sequential_section
from pipeline.report.linked_counts import (
    PublishedSet,
    arm_key,
    published_set,
)
from pipeline.report.provenance import provenance
from pipeline.report.sections import (
    comparability_section,
    data_quality_section,
    flow_section,
    jdl_section,
)
from pipeline.report.sentences import build_text
from pipeline.report.target_trial import specification
from pipeline.report.unmatched import unmatched_in_words
from pipeline.warehouse_io import read_extract, read_optional

OUTCOME_NAMES = {"stalking_harassment": "stalking or harassment", "any": "any",
                 "violence": "violent"}
ANALYSIS_LABELS = {
    "weighted_risk_sets": "Everyone who started, weighted within risk sets (main analysis)",
    "weighted_risk_sets_per_protocol": "Per protocol: comparison people censored when they "
                                       "start treatment (IPCW)",
    "matched": "Matched comparison (describes the matched only)",
    "weighted_att": "Weighted comparison (ATT)",
    "weighted_ate": "Weighted comparison (ATE)",
    "weighted_ato": "Overlap weights (people comparable in both groups)",
    "weighted_att_trimmed": "Weighted (ATT), extreme weights trimmed",
    "matched_itt": "Intention to treat (accepted referrals), matched",
    "matched_recorded_outcome": "Police-recorded instead of proven reoffending",
    "matched_caliper_0.1": "Matching with a narrower caliper (0.1 SD)",
    "matched_caliper_0.5": "Matching with a wider caliper (0.5 SD)",
    "naive": "No adjustment (naive comparison)",
    "naive_adjusted": "Covariate-adjusted Cox model, no matching",
    "itt": "Intention to treat, no adjustment",
    "recorded_outcome": "Police-recorded outcome, no adjustment",
    "custody_counted": "Time in custody counted as time at risk",
    "any_offence": "Any new offence, no adjustment",
    "violence": "Violent offences, no adjustment",
}


def policy_from(cfg: EvaluationConfig) -> DisclosurePolicy:
    return DisclosurePolicy.from_mapping(cfg.disclosure)


INTERACTION_LABELS = {"subgroup:srp_type": "typology", "subgroup:risk_rating": "risk level",
                      "subgroup:victim_relationship": "relationship to the victim",
                      "subgroup:site": "site", "dose:sessions": "sessions attended"}


def main_analysis(est: Estimates, cfg: EvaluationConfig) -> str:
    """The analysis the headline reports: the plan's primary analysis when the comparison was
    run (a not-estimable primary is reported as such, never replaced by another analysis),
    else the naive comparison."""
    primary = HR_SOURCES.get(cfg.plan.primary_analysis, (cfg.plan.primary_analysis,))[0]
    return primary if est.has(primary) else "naive"


KM_TABLES = {"weighted_risk_sets": "analysis.primary_km", "matched": "analysis.matched_km"}
# when the plan makes the per-protocol contrast primary, the headline's risks, RMST and curves
# come from the intention-to-treat weighted analysis of the same trials (labelled as such)
COMPANION = {"weighted_risk_sets_per_protocol": "weighted_risk_sets"}


def _headline(est: Estimates, cfg: EvaluationConfig, policy: DisclosurePolicy,
              balanced: bool) -> dict:
    """The summary page's numbers: the main analysis, verdict, natural frequencies, E-value."""
    main = main_analysis(est, cfg)
    adjusted = main != "naive"
    hr_measure = "hr" if adjusted else "hr_adjusted"
    hr_row = est.get(main, hr_measure)
    hr = _effect(hr_row, policy)
    # the verdict itself follows the analysis plan (build_numbers sets it from the sequential
    # look); here only whether there is an estimate to judge
    verdict = "inconclusive" if hr["available"] else "not_estimable"
    m = cfg.followup_months[0]
    side = COMPANION.get(main, main)  # the analysis giving risks, RMST and E-value
    if adjusted:
        r_t, r_c = est.get(side, f"risk_{m}m", "treated"), est.get(side, f"risk_{m}m",
                                                                    "comparison")
        rd = _effect(est.get(side, f"rd_{m}m"), policy, "pp")
    else:
        r_t = est.get("naive", f"km_reoffended_{m}m", "treated")
        r_c = est.get("naive", f"km_reoffended_{m}m", "comparison")
        rd = {"estimate": "–", "ci": "–", "p": "–", "available": False}
    sentence = ""
    if r_t and r_c and not _withheld(hr_row, policy):
        sentence = W.natural_frequency_sentence(r_t["estimate"], r_c["estimate"], m,
                                                OUTCOME_NAMES.get(cfg.main_family,
                                                                  cfg.main_family))
    level, reason = W.maryland_level(adjusted=adjusted, balanced=balanced,
                                     matched_in_time=adjusted)
    ev, ev_ci, mde = (est.get(side, k) for k in ("evalue_hr", "evalue_hr_ci", "mde_hr"))
    return {
        "analysis": main, "analysis_label": ANALYSIS_LABELS.get(main, main),
        "hr": hr, "verdict": verdict,
        "risk_difference": rd, "months": m, "natural_frequencies": sentence,
        "risk_treated": W.fmt_pct(r_t["estimate"]) if r_t else "–",
        "risk_comparison": W.fmt_pct(r_c["estimate"]) if r_c else "–",
        "rmst": _effect(est.get(side, f"rmst_diff_{cfg.followup_months[-1]}m"), policy,
                        "months") if adjusted else dict(NOT_ESTIMATED),
        "rmst_months": cfg.followup_months[-1],
        "sms_level": level, "sms_reason": reason,
        "evalue": W.fmt_ratio(ev["estimate"]) if ev else "–",
        "evalue_ci": W.fmt_ratio(ev_ci["estimate"]) if ev_ci else "–",
        "mde_hr": W.fmt_ratio(mde["estimate"]) if mde else "–",
        "mde_value": round(mde["estimate"], 4) if mde and W.is_num(mde["estimate"]) else None,
        "n_treated": est.count(main, hr_measure, "n_treated", policy) if hr_row else "–",
        "n_comparison": est.count(main, hr_measure, "n_comparison", policy) if hr_row else "–",
    }


def _hr_rows(est: Estimates, policy: DisclosurePolicy, analyses: list[str],
             measure_for: dict[str, str] | None = None) -> list[dict]:
    """Rows of a hazard-ratio table or forest plot: label, counts, formatted HR and CI."""
    rows = []
    for a in analyses:
        measure = (measure_for or {}).get(a, "hr")
        row = est.get(a, measure)
        if row is None:
            continue
        eff = _effect(row, policy)
        rows.append({"analysis": a, "label": ANALYSIS_LABELS.get(a, a.replace("_", " ")),
                     "n_treated": est.count(a, measure, "n_treated", policy),
                     "n_comparison": est.count(a, measure, "n_comparison", policy),
                     "hr": eff["estimate"], "ci": eff["ci"], "p": eff["p"],
                     "value": eff.get("value"), "lower": eff.get("lower"),
                     "upper": eff.get("upper")})
    return rows


def build_numbers(con: duckdb.DuckDBPyConnection, extract_id: str,
                  cfg: EvaluationConfig) -> dict:
    """Assemble the document from the analysis tables, applying disclosure control."""
    policy = policy_from(cfg)
    pub = published_set(con, extract_id, policy)  # every count, protected as one linked set
    units = read_extract(con, "analysis.units", extract_id)
    units = units[units["cohort"] == "started"]
    n_treated = int((units["arm"] == "treated").sum())
    n_comparison = int((units["arm"] == "comparison").sum())
    sufficient = n_treated >= cfg.min_treated
    doc = {
        "provenance": provenance(con, extract_id, cfg),
        "policy": {"threshold": policy.threshold, "suppressed_label": policy.suppressed_label,
                   "min_treated": cfg.min_treated,
                   "min_events": policy.min_events_for_estimate},
        "status": "ok" if sufficient else "insufficient",
        "outcome": {"family": cfg.main_family,
                    "name": OUTCOME_NAMES.get(cfg.main_family, cfg.main_family),
                    "proof": cfg.proof, "grace_days": cfg.grace_days,
                    "grace_months": round(cfg.grace_days / W.DAYS_PER_MONTH),
                    "custody_time_at_risk": cfg.custody_time_at_risk,
                    "followup_months": list(cfg.followup_months)},
        "cohort": {"treated_n": pub.result.published.get(arm_key("started", "treated"),
                                                          publish_count(n_treated, policy)),
                   "comparison_n": pub.result.published.get(
                       arm_key("started", "comparison"), publish_count(n_comparison, policy)),
                   "shortfall_n": publish_count(max(cfg.min_treated - n_treated, 0), policy)},
        "flow": flow_section(pub),
        "data_quality": data_quality_section(con, extract_id, policy, pub),
        "figures": {},
    }
    if not sufficient:
        doc["text"] = build_text(doc, cfg)
        return doc
    est = Estimates(read_optional(con, "analysis.survival_estimates", extract_id),
                    read_optional(con, "analysis.comparison_estimates", extract_id))
    est.counts = pub.estimates  # same concatenation, counts from the linked set
    balance = read_optional(con, "analysis.balance", extract_id)
    if balance is not None and "cohort" in balance.columns:
        balance = balance[balance["cohort"] == "started"]
    # the main analysis decides the design's strength; the others are sensitivity analyses
    after = balance[balance["method"] == main_analysis(est, cfg)] \
        if balance is not None else None
    threshold = cfg.comparison.balance_threshold
    balanced = bool(after is not None and len(after)
                    and (after["smd"].abs() <= threshold).all())
    doc["summary"] = _headline(est, cfg, policy, balanced)
    hr_row = est.get(doc["summary"]["analysis"], "hr") or {}
    analysed = hr_row.get("n_treated")
    if analysed is not None and int(analysed) < cfg.min_treated:
        # the minimum applies to the people the primary estimate rests on, not the cohort
        doc["status"] = "insufficient"
        doc["cohort"]["analysed_n"] = publish_count(int(analysed), policy)
        doc["cohort"]["shortfall_n"] = publish_count(cfg.min_treated - int(analysed), policy)
        doc.pop("summary")
        doc["text"] = build_text(doc, cfg)
        return doc
    # the verdict follows the pre-specified plan and its sequential boundary (issue 13)
    doc["sequential"] = sequential_section(con, extract_id, cfg, policy)
    doc["summary"]["verdict"] = doc["sequential"]["verdict"]
    if not doc["summary"]["hr"]["available"]:  # withheld or not estimable: no verdict on it
        doc["summary"]["verdict"] = "not_estimable"
    doc["comparability"] = comparability_section(con, extract_id, balance, policy, threshold,
                                          doc["summary"]["analysis"], pub)
    doc["results"] = _results(con, extract_id, cfg, est, policy, pub)
    doc["text"] = build_text(doc, cfg, unmatched_in_words(con, extract_id, cfg))
    doc["target_trial"] = specification(cfg, doc["outcome"]["name"])
    doc["jdl"] = jdl_section(con, extract_id, cfg, policy)
    return doc


def _results(con, extract_id: str, cfg: EvaluationConfig, est: Estimates,
             policy: DisclosurePolicy,
             pub: PublishedSet | None = None) -> dict:
    main = COMPANION.get(main_analysis(est, cfg), main_analysis(est, cfg))
    km_table = KM_TABLES.get(main, "analysis.km")
    if read_optional(con, km_table, extract_id) is None:
        km_table = "analysis.km"
    props = read_extract(con, "analysis.window_proportions", extract_id)
    windows = []
    for m in cfg.followup_months:
        row = {"months": m}
        for arm in ("treated", "comparison"):
            r = est.get(main, f"risk_{m}m", arm) if main != "naive" else \
                est.get("naive", f"km_reoffended_{m}m", arm)
            row[arm] = _effect(r, policy, "pct")
        row["rd"] = _effect(est.get(main, f"rd_{m}m"), policy, "pp")
        row["rr"] = _effect(est.get(main, f"rr_{m}m"), policy)
        row["rmst"] = _effect(est.get(main, f"rmst_diff_{m}m"), policy, "months")
        windows.append(row)
    dr = "weighted_risk_sets_dr"
    dr_windows = [{"months": m,
                   **{arm: _effect(est.get(dr, f"risk_{m}m", arm), policy, "pct")
                      for arm in ("treated", "comparison")},
                   "rd": _effect(est.get(dr, f"rd_{m}m"), policy, "pp")}
                  for m in cfg.followup_months] if est.has(dr) and main != "naive" else []
    sensitivity = ["weighted_risk_sets", "weighted_risk_sets_per_protocol", "matched",
                   "weighted_att", "weighted_ate",
                   "weighted_ato", "weighted_att_trimmed",
                   "matched_itt", "matched_recorded_outcome",
                   "matched_caliper_0.1", "matched_caliper_0.5", "naive", "naive_adjusted"]
    measure_for = {"naive": "hr_unadjusted", "naive_adjusted": "hr_adjusted"}
    est_for_naive = Estimates(est.frame.assign(
        analysis=np.where((est.frame["analysis"] == "naive")
                          & (est.frame["measure"] == "hr_adjusted"), "naive_adjusted",
                          est.frame["analysis"])))
    est_for_naive.counts = est.counts  # same rows, same published counts: not recomputed
    hr_rows = _hr_rows(est_for_naive, policy, sensitivity, measure_for)
    subgroups = sorted(a for a in est.frame["analysis"].unique() if str(a).startswith("subgroup:"))
    subgroup_rows = _hr_rows(est, policy, subgroups)
    for r in subgroup_rows:
        var, _, level = r["analysis"].removeprefix("subgroup:").partition("=")
        r["label"] = f"{var.replace('_', ' ')}: {level.replace('_', ' ')}"
    treated_only = [
        {"label": lab, **_effect(est.get("treated_only", meas), policy)}
        for meas, lab in (("hr_completers", "Completers vs non-completers"),
                          ("hr_per_5_sessions", "Per 5 sessions attended"))
        if est.get("treated_only", meas)]
    return {
        "analysis": main, "km_source": km_table.split(".")[1],
        "windows": windows, "dr_windows": dr_windows,
        "proportions": _proportions(props, policy, pub),
        "hr_rows": hr_rows, "subgroups": subgroup_rows, "treated_only": treated_only,
        "landmark_days": cfg.landmark_days,
        "same_victim": {arm: _effect(est.get("naive", "same_victim_share", arm), policy,
                                     "pct")["estimate"] for arm in ("treated", "comparison")},
        "ph_test_p": W.fmt_p((est.get(main, "ph_test_treated") or {}).get("p")),
        "interaction": _interaction(est),
    }


def _interaction(est: Estimates) -> list[dict]:
    """Interaction tests with Holm-adjusted p-values over the tests that were computed."""
    rows = est.frame[est.frame["measure"] == "interaction_p"].to_dict("records")
    adjusted = holm([r["p"] if W.is_num(r["p"]) else None for r in rows])
    return [{"subgroup": INTERACTION_LABELS.get(r["analysis"], r["analysis"]),
             "p": W.fmt_p(r["p"]), "p_holm": W.fmt_p(a if np.isfinite(a) else None)}
            for r, a in zip(rows, adjusted, strict=True)]
