"""Evaluation cohort in set-based SQL: linked persons, treated units, risk sets, comparison units.

Treated people enter on their first attended treatment session (the index date). Comparison
people enter through risk sets: on a treated person's index date, a never-treated person at the
same site is eligible if alive, not in custody, not yet referred, adult, and their latest
qualifying stalking/harassment offence lies as long before that date as the treated person's
(within ``risk_set_window_days``). No immortal time is credited to either group: nobody's
follow-up starts before the date on which they were eligible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.config import EvaluationConfig
from pipeline.contracts.rules import sql_str
from pipeline.contracts.schema import load_offence_codes
from pipeline.warehouse_io import write_extract_rows

FOREVER = "DATE '9999-12-31'"


def sql_date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def sql_list(values) -> str:
    return ", ".join(sql_str(v) for v in values)


@dataclass(frozen=True)
class CohortCounts:
    treated: int
    comparison_pool: int
    risk_set_pairs: int
    unlinked_referrals: int


def create_inputs(con: duckdb.DuckDBPyConnection, extract_id: str) -> None:
    """Temp views of this extract's staged tables and the offence-code lookup."""
    for table in ("police_persons", "police_offences", "clinic_referrals", "clinic_sessions"):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * EXCLUDE (_extract_id) "
                    f"FROM staging.{table} WHERE _extract_id = {sql_str(extract_id)}")
    codes = pd.DataFrame([(c.code, c.family) for c in load_offence_codes()],
                         columns=["code", "family"])
    con.register("_codes", codes)
    con.execute("CREATE OR REPLACE TEMP TABLE offence_codes AS SELECT * FROM _codes")
    con.unregister("_codes")
    # custody spells, overlapping sentences merged so that no day is counted twice
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE custody AS
        WITH s AS (
            SELECT person_key, outcome_date AS start_date,
                   coalesce(custody_release_date, {FOREVER}) AS end_date
            FROM police_offences WHERE disposal = 'custody' AND outcome_date IS NOT NULL),
        o AS (
            SELECT *, max(end_date) OVER (PARTITION BY person_key ORDER BY start_date, end_date
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
            FROM s),
        g AS (
            SELECT *, sum(CASE WHEN prev_end IS NULL OR start_date > prev_end THEN 1 ELSE 0 END)
                      OVER (PARTITION BY person_key ORDER BY start_date, end_date) AS spell
            FROM o)
        SELECT person_key, min(start_date) AS start_date, max(end_date) AS end_date
        FROM g GROUP BY person_key, spell""")


PERSONS_SQL = """
WITH tx AS (
    SELECT referral_key, min(session_date) AS first_tx, count(*) AS n_tx
    FROM clinic_sessions WHERE attended AND session_type = 'treatment' GROUP BY referral_key),
ranked AS (
    SELECT r.*, tx.first_tx, coalesce(tx.n_tx, 0) AS n_tx,
           row_number() OVER (PARTITION BY r.person_key
                              ORDER BY tx.first_tx NULLS LAST, r.referral_date, r.referral_key)
               AS rn
    FROM clinic_referrals r LEFT JOIN tx USING (referral_key)),
agg AS (
    SELECT person_key, count(*) AS n_referrals, min(referral_date) AS first_referral_date,
           min(decision_date) FILTER (WHERE decision = 'accepted') AS first_accepted_date
    FROM clinic_referrals GROUP BY person_key)
SELECT $eid AS extract_id, p.person_key, p.birth_year, p.sex, p.ethnicity_group, p.site,
       p.date_of_death, coalesce(agg.n_referrals, 0) AS n_referrals, agg.first_referral_date,
       agg.first_accepted_date, k.referral_key AS treatment_referral_key,
       k.first_tx AS first_treatment_date, coalesce(k.n_tx, 0) AS sessions_attended,
       coalesce(k.first_tx IS NOT NULL AND k.discharge_reason = 'completed', FALSE) AS completed,
       k.discharge_reason, k.srp_type, k.risk_rating, k.personality_disorder, k.psychosis,
       k.substance_misuse
FROM police_persons p
LEFT JOIN agg USING (person_key)
LEFT JOIN ranked k ON k.person_key = p.person_key AND k.rn = 1
"""


def link_persons(con: duckdb.DuckDBPyConnection, extract_id: str) -> tuple[int, int]:
    """Write ``analysis.persons`` (police person + clinic summary); return (persons, unlinked)."""
    create_inputs(con, extract_id)
    n = write_extract_rows(con, "analysis.persons", PERSONS_SQL, extract_id)
    unlinked = con.execute("SELECT count(*) FROM clinic_referrals r ANTI JOIN police_persons p "
                           "USING (person_key)").fetchone()[0]
    return n, unlinked


def _qualifying_sql(cfg: EvaluationConfig, window_end: dt.date) -> str:
    first = cfg.first_index_date - dt.timedelta(days=cfg.qualifying_lookback_days)
    return f"""
        CREATE OR REPLACE TEMP TABLE qualifying AS
        SELECT o.person_key, o.offence_key, o.offence_date, o.victim_key, o.victim_relationship
        FROM police_offences o JOIN offence_codes c ON c.code = o.offence_code
        WHERE c.family = 'stalking_harassment'
          AND o.offence_date BETWEEN {sql_date(first)} AND {sql_date(window_end)}"""


def _treated_sql(cfg: EvaluationConfig, window_end: dt.date) -> str:
    """Every person who started treatment, with one flag per eligibility step (in flow order)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE treated_steps AS
        WITH base AS (
            SELECT p.*, p.first_treatment_date AS index_date FROM persons p
            WHERE p.n_referrals > 0),
        q AS (
            SELECT b.person_key, q.offence_key, q.offence_date,
                   row_number() OVER (PARTITION BY b.person_key
                                      ORDER BY q.offence_date DESC, q.offence_key) AS rn
            FROM base b JOIN qualifying q ON q.person_key = b.person_key
             AND q.offence_date <= b.index_date
             AND q.offence_date >= b.index_date - {cfg.qualifying_lookback_days})
        SELECT b.person_key, b.site, b.index_date, q.offence_key AS qualifying_offence_key,
               q.offence_date AS qualifying_date,
               b.first_accepted_date IS NOT NULL AS s1_accepted,
               b.index_date IS NOT NULL AS s2_started,
               b.index_date BETWEEN {sql_date(cfg.first_index_date)} AND {sql_date(window_end)}
                   AS s3_in_window,
               q.offence_key IS NOT NULL AS s4_qualifying,
               b.site IN ({sql_list(cfg.sites)}) AS s5_site,
               year(b.index_date) - b.birth_year >= {cfg.min_age} AS s6_adult,
               coalesce(b.date_of_death > b.index_date, TRUE) AS s7_alive,
               NOT EXISTS (SELECT 1 FROM custody k WHERE k.person_key = b.person_key
                           AND b.index_date BETWEEN k.start_date AND k.end_date) AS s8_free
        FROM base b LEFT JOIN q ON q.person_key = b.person_key AND q.rn = 1"""


TREATED_STEPS = (
    ("referred", "Referred to the clinic", None),
    ("accepted", "Referral accepted", "s1_accepted"),
    ("started", "Started treatment (attended a treatment session)", "s2_started"),
    ("in_window", "Index date within the study period", "s3_in_window"),
    ("qualifying", "Qualifying stalking/harassment offence before index", "s4_qualifying"),
    ("site", "At a study site", "s5_site"),
    ("adult", "Adult at index", "s6_adult"),
    ("alive", "Alive at index", "s7_alive"),
    ("free", "Not in custody at index (treated cohort)", "s8_free"),
)


def _risk_set_sql(cfg: EvaluationConfig) -> str:
    """Pairs (treated person, eligible never-treated person) on the treated index date."""
    return f"""
        CREATE OR REPLACE TEMP TABLE risk_sets AS
        SELECT t.person_key AS treated_key, t.index_date, c.person_key,
               q.offence_key AS qualifying_offence_key, q.offence_date AS qualifying_date
        FROM treated t
        JOIN persons c ON c.site = t.site
             AND c.first_treatment_date IS NULL
        JOIN qualifying q ON q.person_key = c.person_key
             AND q.offence_date <= t.index_date
             AND q.offence_date >= t.index_date - {cfg.qualifying_lookback_days}
             AND abs((t.index_date - q.offence_date) - (t.index_date - t.qualifying_date))
                 <= {cfg.risk_set_window_days}
        WHERE coalesce(c.date_of_death > t.index_date, TRUE)
          AND coalesce(c.first_referral_date > t.index_date, TRUE)
          AND year(t.index_date) - c.birth_year >= {cfg.min_age}
          AND NOT EXISTS (SELECT 1 FROM custody k WHERE k.person_key = c.person_key
                          AND t.index_date BETWEEN k.start_date AND k.end_date)
        QUALIFY row_number() OVER (PARTITION BY t.person_key, c.person_key
                                   ORDER BY q.offence_date DESC, q.offence_key) = 1"""


def build_units(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                extraction: dt.date) -> CohortCounts:
    """Write treated units, risk sets, the naive comparison sample and the flow table."""
    create_inputs(con, extract_id)
    con.execute("CREATE OR REPLACE TEMP VIEW persons AS SELECT * EXCLUDE (extract_id) "
                f"FROM analysis.persons WHERE extract_id = {sql_str(extract_id)}")
    window_end = cfg.index_window_end(extraction)
    con.execute(_qualifying_sql(cfg, window_end))
    con.execute(_treated_sql(cfg, window_end))
    flags = [f for _, _, f in TREATED_STEPS if f]
    con.execute("CREATE OR REPLACE TEMP TABLE treated AS SELECT * FROM treated_steps WHERE "
                + " AND ".join(flags))
    con.execute(_risk_set_sql(cfg))
    seed = sql_str(str(cfg.seed))
    # naive comparison: each eligible person enters once, on one of their risk-set dates drawn
    # deterministically (md5 of keys and seed): an index date on which they were truly eligible
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE comparison AS SELECT * FROM risk_sets
        QUALIFY row_number() OVER (PARTITION BY person_key
                                   ORDER BY md5(person_key || treated_key || {seed})) = 1""")
    write_extract_rows(con, "analysis.risk_sets", "SELECT $eid AS extract_id, * FROM risk_sets",
                       extract_id)
    write_extract_rows(con, "analysis.units", """
        SELECT $eid AS extract_id, person_key AS unit_id, person_key, 'treated' AS arm,
               index_date, qualifying_offence_key, qualifying_date, NULL::VARCHAR AS treated_key
        FROM treated
        UNION ALL
        SELECT $eid, person_key, person_key, 'comparison', index_date, qualifying_offence_key,
               qualifying_date, treated_key FROM comparison""", extract_id)
    _write_flow(con, extract_id, cfg)
    n_t, n_pool, n_pairs = con.execute(
        "SELECT (SELECT count(*) FROM treated), (SELECT count(*) FROM comparison), "
        "(SELECT count(*) FROM risk_sets)").fetchone()
    unlinked = con.execute("SELECT count(*) FROM clinic_referrals r ANTI JOIN police_persons p "
                           "USING (person_key)").fetchone()[0]
    return CohortCounts(n_t, n_pool, n_pairs, unlinked)


def _write_flow(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig) -> None:
    """Counts at each eligibility step, treated and comparison arms (a CONSORT diagram's data)."""
    parts = []
    flags: list[str] = []
    for i, (step, label, flag) in enumerate(TREATED_STEPS):
        if flag:
            flags.append(flag)
        cond = " AND ".join(flags) or "TRUE"
        parts.append(f"SELECT 'treated' AS arm, {i} AS step_no, {sql_str(step)} AS step, "
                     f"{sql_str(label)} AS label, count(*) FILTER (WHERE {cond}) AS n "
                     "FROM treated_steps")
    comparison_steps = (
        ("qualifying", "Qualifying stalking/harassment offence in the study period",
         "SELECT count(DISTINCT person_key) FROM qualifying"),
        ("never_treated", "Never started treatment",
         "SELECT count(DISTINCT q.person_key) FROM qualifying q JOIN persons p USING "
         "(person_key) WHERE p.first_treatment_date IS NULL"),
        ("site", "At a study site",
         "SELECT count(DISTINCT q.person_key) FROM qualifying q JOIN persons p USING "
         "(person_key) WHERE p.first_treatment_date IS NULL "
         f"AND p.site IN ({sql_list(cfg.sites)})"),
        ("eligible", "Eligible on a treated person's index date (comparison pool)",
         "SELECT count(DISTINCT person_key) FROM risk_sets"),
    )
    for i, (step, label, sql) in enumerate(comparison_steps):
        parts.append(f"SELECT 'comparison', {i}, {sql_str(step)}, {sql_str(label)}, ({sql})")
    write_extract_rows(con, "analysis.cohort_flow",
                       "SELECT $eid AS extract_id, * FROM (" + " UNION ALL ".join(parts) + ")",
                       extract_id)
