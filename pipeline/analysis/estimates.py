"""Descriptive survival estimates of the cohort, written to ``analysis.*`` for the report."""

from __future__ import annotations

import duckdb

from pipeline.analysis.by_arm import at_risk_table, km_by_arm, window_proportions
from pipeline.analysis.frames import cohort_frame
from pipeline.config import EvaluationConfig
from pipeline.warehouse_io import write_frame

AT_RISK_MONTHS = tuple(range(0, 37, 6))


def month_days(months: int) -> int:
    """Whole days in a number of months (365.25 / 12 per month), as the cohort SQL uses."""
    return int(round(months * 365.25 / 12))


def write_descriptive_estimates(con: duckdb.DuckDBPyConnection, extract_id: str,
                                cfg: EvaluationConfig) -> dict:
    """Kaplan-Meier by arm, numbers at risk and window proportions for the main outcome."""
    frame = cohort_frame(con, extract_id, cfg)
    km = km_by_arm(frame)
    days = [month_days(m) for m in AT_RISK_MONTHS]
    at_risk = at_risk_table(frame, days).reset_index(names="arm").melt(
        id_vars="arm", var_name="day", value_name="n_at_risk")
    props = window_proportions(frame, cfg.followup_months)
    write_frame(con, "analysis.km", km, extract_id)
    write_frame(con, "analysis.at_risk", at_risk, extract_id)
    write_frame(con, "analysis.window_proportions", props, extract_id)
    return {"km_rows": len(km), "units": len(frame),
            "events": int(frame["event"].sum())}
