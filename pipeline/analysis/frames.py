"""Read the evaluation cohort from DuckDB as one person-level frame for the statistics."""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.config import EvaluationConfig


def cohort_frame(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                 family: str | None = None, proof: str | None = None,
                 units: str = "units", prefix: str = "") -> pd.DataFrame:
    """One row per unit: arm, covariates and the outcome of one family and proof rule.

    ``time_days`` is days at risk (custody excluded) unless the config counts custody as time
    at risk; ``treated`` is 1 for the treated arm.
    """
    family = family or cfg.main_family
    proof = proof or cfg.proof
    time_col = "calendar_days" if cfg.custody_time_at_risk else "at_risk_days"
    frame = con.execute(
        f"""SELECT u.unit_id, u.person_key, u.arm, u.index_date, c.* EXCLUDE (extract_id, unit_id),
                   o.event, o.died, o.{time_col} AS time_days, o.calendar_days, o.custody_days,
                   o.same_victim, o.* EXCLUDE (extract_id, unit_id, family, proof, event, died,
                   end_date, calendar_days, at_risk_days, custody_days, same_victim)
            FROM analysis.{prefix}{units} u
            JOIN analysis.{prefix}covariates c USING (extract_id, unit_id)
            JOIN analysis.{prefix}outcomes o USING (extract_id, unit_id)
            WHERE u.extract_id = ? AND o.family = ? AND o.proof = ?
            ORDER BY u.arm DESC, u.unit_id""", [extract_id, family, proof]).df()
    frame["treated"] = (frame["arm"] == "treated").astype(int)
    frame["event"] = frame["event"].astype(int)
    return frame
