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
    """Comparison units whose index date is before their qualifying offence, on or after a
    referral or death, or who were ever treated (follow-up credited while not eligible)."""
    return con.execute("""
        SELECT count(*) FROM analysis.units u
        JOIN analysis.persons p USING (extract_id, person_key)
        WHERE u.extract_id = ? AND u.arm = 'comparison' AND (
              u.index_date < u.qualifying_date
           OR u.index_date >= coalesce(p.first_referral_date, DATE '9999-12-31')
           OR u.index_date >= coalesce(p.date_of_death, DATE '9999-12-31')
           OR p.first_treatment_date IS NOT NULL)""", [extract_id]).fetchone()[0]
