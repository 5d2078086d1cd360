"""Read the evaluation cohort from DuckDB as one person-level frame for the statistics."""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.config import EvaluationConfig


def cohort_frame(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                 family: str | None = None, proof: str | None = None,
                 cohort: str = "started", units: str = "units",
                 prefix: str = "") -> pd.DataFrame:
    """One row per unit of a cohort: arm, covariates, treatment detail and one outcome.

    ``time_days`` is days at risk (custody excluded) unless the config counts custody as time
    at risk; ``treated`` is 1 for the treated arm; ``completed``, ``sessions_attended`` and
    the clinic assessment are filled for treated people only.
    """
    family = family or cfg.main_family
    proof = proof or cfg.proof
    time_col = "calendar_days" if cfg.custody_time_at_risk else "at_risk_days"
    frame = con.execute(
        f"""SELECT u.unit_id, u.person_key, u.arm, u.index_date, u.treated_key, u.sampling_weight,
                   c.* EXCLUDE (extract_id, unit_id),
                   CASE WHEN u.arm = 'treated' THEN p.completed END AS completed,
                   CASE WHEN u.arm = 'treated' THEN p.sessions_attended END
                       AS sessions_attended,
                   p.srp_type, p.risk_rating, p.personality_disorder, p.psychosis,
                   p.substance_misuse,
                   o.event, o.died, o.{time_col} AS time_days, o.calendar_days, o.custody_days,
                   o.same_victim, o.* EXCLUDE (extract_id, unit_id, family, proof, event, died,
                   end_date, calendar_days, at_risk_days, custody_days, same_victim)
            FROM analysis.{prefix}{units} u
            JOIN analysis.{prefix}covariates c USING (extract_id, unit_id)
            JOIN analysis.{prefix}outcomes o USING (extract_id, unit_id)
            JOIN analysis.persons p USING (extract_id, person_key)
            WHERE u.extract_id = ? AND u.cohort = ? AND o.family = ? AND o.proof = ?
            ORDER BY u.arm DESC, u.unit_id""", [extract_id, cohort, family, proof]).df()
    frame["treated"] = (frame["arm"] == "treated").astype(int)
    frame["event"] = frame["event"].astype(int)
    return frame
