"""Integrity checks of the cohort tables, used by the asset checks and the tests."""

from __future__ import annotations

import duckdb

from pipeline.warehouse_io import read_extract


def flow_problems(con: duckdb.DuckDBPyConnection, extract_id: str) -> list[str]:
    """Steps that grow instead of shrinking, or a final step that differs from the cohort."""
    flow = read_extract(con, "analysis.cohort_flow", extract_id).sort_values(
        ["cohort", "arm", "step_no"])
    units = read_extract(con, "analysis.units", extract_id)
    size = units.groupby(["cohort", "arm"]).size()
    problems = []
    for (cohort, arm), steps in flow.groupby(["cohort", "arm"]):
        n = steps["n"].to_numpy()
        if (n[1:] > n[:-1]).any():
            problems.append(f"{cohort}/{arm}: a step has more people than the step before")
        in_cohort = int(size.get((cohort, arm), 0))
        if n[-1] != in_cohort:
            problems.append(f"{cohort}/{arm}: the last step ({n[-1]}) differs from the cohort "
                            f"({in_cohort})")
    return problems


def immortal_time_problems(con: duckdb.DuckDBPyConnection, extract_id: str) -> int:
    """Comparison units and risk-set pairs credited with time while not eligible: an index
    date before the qualifying offence, or on or after the person's own referral, treatment
    start or death. People treated *later* are correct controls before their own start
    (sequential trials); only a comparison index on or after it is a problem."""
    return con.execute("""
        WITH c AS (
            SELECT person_key, index_date, qualifying_date FROM analysis.units
            WHERE extract_id = $eid AND arm = 'comparison'
            UNION ALL
            SELECT person_key, index_date, qualifying_date FROM analysis.risk_sets
            WHERE extract_id = $eid)
        SELECT count(*) FROM c JOIN analysis.persons p
             ON p.extract_id = $eid AND p.person_key = c.person_key
        WHERE c.index_date < c.qualifying_date
           OR c.index_date >= coalesce(p.first_referral_date, DATE '9999-12-31')
           OR c.index_date >= coalesce(p.first_treatment_date, DATE '9999-12-31')
           OR c.index_date >= coalesce(p.date_of_death, DATE '9999-12-31')""",
                       {"eid": extract_id}).fetchone()[0]
