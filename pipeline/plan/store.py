"""The evaluation history in the warehouse (``analysis.evaluation_history``), one row per look.

Each extract's run records its own look: the primary hazard ratio with its CI and events, the
balance and sensitivity facts the verdict rule needs, the plan hash in force, and the
sequential quantities and verdict computed then. Earlier looks are read back as recorded
(never recomputed under a changed plan); the current look is computed from them and the
current plan, so the report and the asset get the same row without depending on run order.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from pipeline.config import EvaluationConfig
from pipeline.plan.looks import sequential_table
from pipeline.plan.spec import HR_SOURCES
from pipeline.report.verdict import Evidence, grade
from pipeline.warehouse_io import table_exists

TABLE = "analysis.evaluation_history"
FACT_COLUMNS = ["extraction_date", "plan_sha256", "plan", "estimate", "lower", "upper",
                "events", "events_treated", "events_comparison", "n_treated", "n_comparison",
                "reason", "balanced", "sensitivity_hrs"]
SEQ_COLUMNS = ["look", "information_fraction", "z", "boundary_z", "alpha_spent",
               "hr_boundary_reduction", "hr_boundary_increase", "rci_lower", "rci_upper",
               "crossed", "decision", "decided_at_look", "after_final", "final", "verdict"]


# analyses whose comparison arm counts person-trials with weights: their raw event count is
# not the information of the log hazard ratio, so the look uses effective events instead
WEIGHTED_ANALYSES = frozenset({"weighted_risk_sets", "weighted_risk_sets_per_protocol",
                               "weighted_att", "weighted_ate", "weighted_att_trimmed"})


def effective_events(lower: float, upper: float, fallback: float) -> float:
    """Events a one-to-one comparison would need for the same precision: the information of
    the log HR is 1/SE^2 and a 1:1 comparison's is events/4 (Schoenfeld), so 4/SE^2, with the
    SE read off the 95% CI. ``fallback`` when the CI is not finite."""
    if not (np.isfinite(lower) and np.isfinite(upper)) or lower <= 0 or upper <= lower:
        return fallback
    se = (np.log(upper) - np.log(lower)) / (2 * 1.959964)
    return float(4.0 / se**2)


def _hr_row(con, extract_id: str, analysis: str, measure: str) -> dict | None:
    for table in ("analysis.comparison_estimates", "analysis.survival_estimates"):
        if not table_exists(con, table):
            continue
        rows = con.execute(
            f"SELECT * FROM {table} WHERE extract_id = ? AND analysis = ? AND measure = ? "
            "AND coalesce(arm, '') = ''", [extract_id, analysis, measure]).df()
        if len(rows):
            return rows.iloc[0].to_dict()
    return None


def _balanced(con, extract_id: str, analysis: str, threshold: float) -> bool:
    if not table_exists(con, "analysis.balance"):
        return False
    smd = con.execute("SELECT smd FROM analysis.balance WHERE extract_id = ? AND method = ? "
                      "AND cohort = 'started'", [extract_id, analysis]).df()["smd"]
    return bool(len(smd) and (smd.abs() <= threshold).all())


def look_facts(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig) -> dict:
    """The current look's inputs to the sequential rule, from this extract's estimates."""
    plan = cfg.plan
    date = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                       [extract_id]).fetchone()
    row = _hr_row(con, extract_id, *HR_SOURCES[plan.primary_analysis]) or {}
    sens = []
    for name in plan.sensitivity_analyses:
        r = _hr_row(con, extract_id, *HR_SOURCES[name])
        ok = r is not None and not r.get("reason") and np.isfinite(r.get("estimate", np.nan))
        sens.append(float(r["estimate"]) if ok else None)

    def num(key: str) -> float:
        v = row.get(key)
        return float(v) if v is not None and np.isfinite(v) else np.nan

    reason = str(row.get("reason") or "") if row else "not_run"
    events = num("events_treated") + num("events_comparison")
    if plan.primary_analysis in WEIGHTED_ANALYSES and not reason:
        events = effective_events(num("lower"), num("upper"), events)
    return {"extraction_date": pd.Timestamp(date[0]).date() if date else None,
            "plan_sha256": plan.sha256, "plan": json.dumps(plan.as_json(), sort_keys=True),
            "estimate": np.nan if reason else num("estimate"),
            "lower": np.nan if reason else num("lower"),
            "upper": np.nan if reason else num("upper"),
            "events": events,
            "events_treated": num("events_treated"),
            "events_comparison": num("events_comparison"),
            "n_treated": num("n_treated"), "n_comparison": num("n_comparison"),
            "reason": reason,
            "balanced": _balanced(con, extract_id, plan.primary_analysis,
                                  cfg.comparison.balance_threshold),
            "sensitivity_hrs": json.dumps(sens)}


def recorded(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every recorded look, in extraction order."""
    if not table_exists(con, TABLE):
        return pd.DataFrame(columns=["extract_id", *FACT_COLUMNS, *SEQ_COLUMNS])
    return con.execute(f"SELECT * FROM {TABLE} ORDER BY extraction_date, extract_id").df()


def history(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig
            ) -> pd.DataFrame:
    """The looks up to and including this extract: earlier ones as recorded, this one now."""
    facts = look_facts(con, extract_id, cfg)
    past = recorded(con)
    if facts["extraction_date"] is not None and len(past):
        dates = pd.to_datetime(past["extraction_date"]).dt.date
        past = past[(past["extract_id"] != extract_id) & (dates < facts["extraction_date"])]
    else:
        past = past.iloc[0:0]
    now = pd.DataFrame([{"extract_id": extract_id, **facts}])
    frame = pd.concat([past[["extract_id", *FACT_COLUMNS]], now], ignore_index=True) \
        if len(past) else now
    seq = sequential_table(frame["events"].fillna(0).to_numpy(float),
                           frame["estimate"].to_numpy(float), frame["lower"].to_numpy(float),
                           frame["upper"].to_numpy(float), cfg.plan)
    k = len(frame) - 1
    ev = Evidence(estimable=bool(seq["estimable"].iloc[k]),
                  decision=str(seq["decision"].iloc[k]),
                  balanced=bool(frame["balanced"].iloc[k]),
                  sensitivity_hrs=tuple(json.loads(frame["sensitivity_hrs"].iloc[k])))
    current = {c: seq[c].iloc[k] for c in SEQ_COLUMNS if c != "verdict"}
    current["verdict"] = grade(ev)
    now = pd.DataFrame([{"extract_id": extract_id, **facts, **current}])
    out = pd.concat([past, now], ignore_index=True) if len(past) else now
    return out[["extract_id", *FACT_COLUMNS, *SEQ_COLUMNS]].reset_index(drop=True)


def plan_changes(hist: pd.DataFrame) -> list[dict]:
    """Looks at which the plan's hash differs from the look before (first look excluded)."""
    out = []
    hashes = hist["plan_sha256"].tolist()
    for k in range(1, len(hashes)):
        if hashes[k] != hashes[k - 1]:
            out.append({"look": k + 1, "extract_id": hist["extract_id"].iloc[k],
                        "extraction_date": str(hist["extraction_date"].iloc[k])[:10],
                        "from": hashes[k - 1][:12], "to": hashes[k][:12]})
    return out
