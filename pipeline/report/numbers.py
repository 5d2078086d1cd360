"""The report's single source of numbers: one JSON document per extract.

Every figure, table and sentence of the funder report reads from this document; counts in it
have already passed disclosure control (strings such as "1,234" or "<10").
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis.estimates import AT_RISK_MONTHS, month_days
from pipeline.config import EvaluationConfig
from pipeline.disclosure import DisclosurePolicy, is_suppressed, publish_count
from pipeline.report.flow import protect_flow
from pipeline.report.provenance import provenance
from pipeline.survival import survival_at
from pipeline.warehouse_io import read_extract


def policy_from(cfg: EvaluationConfig) -> DisclosurePolicy:
    return DisclosurePolicy.from_mapping(cfg.disclosure)


def pct(x: float) -> str:
    """A share as a percentage with one decimal ('12.3%'); '–' when not estimable."""
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def _flow(con, extract_id, policy) -> dict:
    flow = read_extract(con, "analysis.cohort_flow", extract_id).sort_values(["arm", "step_no"])
    return {arm: protect_flow(flow[flow["arm"] == arm], policy).to_dict("records")
            for arm in ("treated", "comparison")}


def _km_points(km: pd.DataFrame, months: tuple[int, ...], at_risk: pd.DataFrame,
               policy: DisclosurePolicy) -> list[dict]:
    """Share reoffended by each window from the KM curves (1 - S), withheld at small risk sets."""
    out = []
    for m in months:
        for arm in ("treated", "comparison"):
            curve = km[km["arm"] == arm]
            n_risk = int(at_risk.query("arm == @arm and day == @d",
                                       local_dict={"arm": arm, "d": month_days(m)})
                         ["n_at_risk"].sum()) if m in AT_RISK_MONTHS else None
            s, lo, hi = survival_at(curve, month_days(m))
            withheld = n_risk is not None and is_suppressed(n_risk, policy)
            out.append({"months": m, "arm": arm,
                        "reoffended": "withheld" if withheld else pct(1 - s),
                        "lower": "withheld" if withheld else pct(1 - hi),
                        "upper": "withheld" if withheld else pct(1 - lo)})
    return out


def _proportions(props: pd.DataFrame, policy: DisclosurePolicy) -> list[dict]:
    rows = []
    for r in props.sort_values(["months", "arm"], ascending=[True, False]).itertuples():
        small = is_suppressed(r.n, policy) or is_suppressed(r.events, policy) or \
            is_suppressed(r.n - r.events, policy)
        rows.append({
            "months": int(r.months), "arm": r.arm, "n": publish_count(int(r.n), policy),
            "events_n": publish_count(int(r.events), policy),
            "percent": "withheld" if small else pct(r.proportion),
            "lower": "withheld" if small else pct(r.lower),
            "upper": "withheld" if small else pct(r.upper)})
    return rows


def build_numbers(con: duckdb.DuckDBPyConnection, extract_id: str,
                  cfg: EvaluationConfig) -> dict:
    """Assemble the document from the analysis tables, applying disclosure control."""
    policy = policy_from(cfg)
    units = read_extract(con, "analysis.units", extract_id)
    n_treated = int((units["arm"] == "treated").sum())
    n_comparison = int((units["arm"] == "comparison").sum())
    sufficient = n_treated >= cfg.min_treated
    doc = {
        "provenance": provenance(con, extract_id, cfg),
        "policy": {"threshold": policy.threshold, "suppressed_label": policy.suppressed_label,
                   "min_treated": cfg.min_treated},
        "status": "ok" if sufficient else "insufficient",
        "outcome": {"family": cfg.main_family, "proof": cfg.proof,
                    "grace_days": cfg.grace_days,
                    "custody_time_at_risk": cfg.custody_time_at_risk},
        "cohort": {"treated_n": publish_count(n_treated, policy),
                   "comparison_n": publish_count(n_comparison, policy)},
        "flow": _flow(con, extract_id, policy),
    }
    if not sufficient:
        return doc
    km = read_extract(con, "analysis.km", extract_id)
    at_risk = read_extract(con, "analysis.at_risk", extract_id)
    props = read_extract(con, "analysis.window_proportions", extract_id)
    doc["km"] = {"figure": "km.png", "points": _km_points(km, cfg.followup_months, at_risk,
                                                         policy)}
    doc["proportions"] = _proportions(props, policy)
    return doc
