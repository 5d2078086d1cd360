"""Sections of the numbers document about the cohort and the data rather than the effect:
participant flow, data quality, comparability (balance, matching, overlap) and the Justice Data
Lab block. Every count comes from the extract's linked published set (``linked_counts``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import EvaluationConfig
from pipeline.disclosure import DisclosurePolicy, protect_rate, publish_count
from pipeline.report import wording as W
from pipeline.report.estimate_format import is_number
from pipeline.report.linked_counts import (
    COMPLETED,
    MATCH_CONTROLS,
    MATCH_MATCHED,
    MATCH_TREATED,
    MATCH_UNMATCHED,
    PublishedSet,
)
from pipeline.warehouse_io import read_optional


def flow_section(pub: PublishedSet) -> dict:
    """The participant flow of the main cohort, extended by completion (treated) and matching
    (comparison) when those counts are publishable; every count comes from the extract's
    linked published set, so no step can be recovered from another table's numbers."""
    out = {arm: pub.flow[("started", arm)].to_dict("records")
           for arm in ("treated", "comparison") if ("started", arm) in pub.flow}
    extra = {"treated": ("completed", "Completed treatment", COMPLETED),
             "comparison": ("matched", "Matched to a treated person", MATCH_CONTROLS)}
    for arm, (step, label, key) in extra.items():
        text = pub.result.published.get(key)
        if arm in out and text is not None and is_number(text):
            out[arm].append({"step": step, "label": label, "n": text})
    return out


TABLE_LABELS = {"police_persons": "Police: people", "police_offences": "Police: offences",
                "clinic_referrals": "Clinic: referrals", "clinic_sessions": "Clinic: sessions"}


def data_quality_section(con, extract_id: str, policy: DisclosurePolicy, pub: PublishedSet) -> dict:
    """Rows received, loaded, set aside and rejected per file, rules broken, linkage rate; the
    counts are the linked published set's (protected together with the flow and estimates)."""
    from pipeline.ingest.quality import data_quality_summary

    dq = data_quality_summary(con, extract_id)
    published = pub.data_quality
    rows = [{"file": TABLE_LABELS.get(t, t), "received": r["Total"], "loaded": r["loaded"],
             "quarantined": r["quarantined"], "rejected": r["rejected"]}
            for t, r in published.iterrows() if t != "Total"]
    total = published.loc["Total"]
    link = dq["linkage"]
    rules = sorted(dq["quarantined_by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "rows": rows,
        "total": {"received": total["Total"], "loaded": total["loaded"],
                  "quarantined": total["quarantined"], "rejected": total["rejected"]},
        "reconciles": bool(dq["reconciles"]),
        "linkage_percent": protect_rate(link["linked_people"], link["clinic_people"], policy)
        if link["clinic_people"] else "–",
        "rules": [{"rule": rule, "rows_n": pub.rules.get(rule, publish_count(n, policy))}
                  for rule, n in rules[:8]],
        "rules_more_n": publish_count(max(len(rules) - 8, 0), policy)}


def jdl_section(con, extract_id: str, cfg: EvaluationConfig, policy: DisclosurePolicy) -> dict:
    """The Justice Data Lab-compatible block (protected values, sentences, footnotes)."""
    from pipeline.ingest.load import extraction_date
    from pipeline.report.jdl_text import jdl_text

    rows = read_optional(con, "analysis.jdl_estimates", extract_id)
    if rows is None or rows.empty:
        return {"available": False}
    out = jdl_text(rows, cfg, extraction_date(con, extract_id), policy)
    names = {"stalking_harassment": "Stalking or harassment", "any": "Any offence"}
    out["rows"] = [
        {"family": names.get(fam, fam.replace("_", " ")),
         "measure": "Proven reoffending rate" if m == "rate" else "Proven reoffences per person",
         **{arm: block[m][arm] for arm in ("treated", "comparison", "difference")}}
        for fam, block in sorted(out["published"].items(),
                                 key=lambda kv: kv[0] != cfg.main_family)
        for m in ("rate", "frequency")]
    order = sorted(out["sentences"], key=lambda fam: fam != cfg.main_family)  # main first
    out["paragraphs"] = [out["sentences"][fam] for fam in order]
    out["available"] = True
    return out


def comparability_section(con, extract_id: str, balance: pd.DataFrame | None,
                   policy: DisclosurePolicy, threshold: float, main: str = "naive",
                   pub: PublishedSet | None = None) -> dict:
    """Balance table rows and the covariates the main analysis leaves imbalanced."""
    out: dict = {"available": balance is not None}
    if balance is None:
        return out
    wide = balance.pivot_table(index="covariate", columns="method", values="smd",
                               aggfunc="first")
    main_rows = balance[balance["method"] == main].set_index("covariate")
    extra = {(cov, stat): main_rows.at[cov, stat] for cov in main_rows.index
             for stat in ("variance_ratio", "ks") if stat in main_rows.columns}
    rows = []
    for cov in wide.index:
        row = {"covariate": W.covariate_label(cov)}
        for method in ("before", "weighted_risk_sets", "matched"):
            v = wide.loc[cov].get(method) if method in wide.columns else None
            row[method] = _two_decimals(v)
        # the main analysis as cobalt reports it: variance ratio and Kolmogorov-Smirnov too
        for stat in ("variance_ratio", "ks"):
            v = extra.get((cov, stat)) if main != "naive" else None
            row[f"main_{stat}"] = _two_decimals(v)
        rows.append(row)
    after = balance[balance["method"] == main] if main != "naive" else \
        balance[balance["method"].isin(["weighted_risk_sets", "matched"])]
    flagged = sorted(after.loc[after["smd"].abs() > threshold, "covariate"].unique())
    out.update({"rows": rows, "imbalanced": [W.covariate_label(c) for c in flagged],
                "all_balanced": not flagged})
    summary = read_optional(con, "analysis.match_summary", extract_id)
    if summary is not None:
        s = summary[(summary["cohort"] == "started") & (summary["analysis"] == "matched")]
        if len(s):
            s = s.iloc[0]
            unmatched = int(s["n_treated"] - s["n_matched"])
            values = {MATCH_TREATED: int(s["n_treated"]), MATCH_MATCHED: int(s["n_matched"]),
                      MATCH_UNMATCHED: unmatched, MATCH_CONTROLS: int(s["n_controls_used"])}
            text = {k: (pub.result.published.get(k) if pub else None)
                    or publish_count(v, policy) for k, v in values.items()}
            share_ok = all(is_number(text[k]) for k in (MATCH_MATCHED, MATCH_UNMATCHED))
            out["matching"] = {
                "treated_n": text[MATCH_TREATED], "matched_n": text[MATCH_MATCHED],
                "unmatched_n": text[MATCH_UNMATCHED],
                "unmatched_percent": W.fmt_pct(unmatched / s["n_treated"]) if share_ok else "–",
                "controls_n": text[MATCH_CONTROLS]}
    overlap = read_optional(con, "analysis.overlap", extract_id)
    if overlap is not None:
        share = overlap[(overlap["cohort"] == "started") & (overlap["stat"] == "share_outside")]
        out["outside_support"] = {r.arm: W.fmt_pct(r.value) for r in share.itertuples()}
    return out


def _two_decimals(v) -> str:
    """A balance statistic with two decimals; '–' where it does not apply (e.g. the variance
    ratio of a binary characteristic)."""
    if v is None or not np.isfinite(float(v)):
        return "–"
    return f"{float(v) + 0.0:.2f}".replace("-0.00", "0.00")
