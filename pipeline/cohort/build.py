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


def in_custody(day: str, spell: str) -> str:
    """SQL: ``day`` lies in the custody spell ``spell`` — from its start (the sentencing date)
    up to but not including its release date: a person released on a day is at liberty on
    that day (the same half-open interval the custody days at risk are counted on)."""
    return f"({day} >= {spell}.start_date AND {day} < {spell}.end_date)"


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
       k.discharge_reason, k.discharge_date AS treatment_discharge_date, k.srp_type,
       k.risk_rating, k.personality_disorder, k.psychosis, k.substance_misuse
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
    """Each person's first stalking/harassment offence of the study period: the offence that
    brings them into the evaluation, from which time since qualifying offence is counted."""
    first = cfg.first_index_date - dt.timedelta(days=cfg.qualifying_lookback_days)
    return f"""
        CREATE OR REPLACE TEMP TABLE qualifying AS
        SELECT o.person_key, o.offence_key, o.offence_date, o.victim_key, o.victim_relationship
        FROM police_offences o JOIN offence_codes c ON c.code = o.offence_code
        WHERE c.family = 'stalking_harassment'
          AND o.offence_date BETWEEN {sql_date(first)} AND {sql_date(window_end)}
        QUALIFY row_number() OVER (PARTITION BY o.person_key
                                   ORDER BY o.offence_date, o.offence_key) = 1"""


@dataclass(frozen=True)
class CohortDefinition:
    """A treated cohort: which date is the index date and the eligibility steps in flow order."""

    name: str
    index_col: str  # column of analysis.persons giving the index date
    description: str
    steps: tuple[tuple[str, str, str | None], ...]


_COMMON_STEPS = (
    ("in_window", "Index date within the study period", "in_window"),
    ("qualifying", "Qualifying stalking/harassment offence before index", "qualifying"),
    ("site", "At a study site", "at_site"),
    ("adult", "Adult at index", "adult"),
    ("alive", "Alive at index", "alive"),
    ("free", "Not in custody at index", "free"),
)
COHORTS = {
    "started": CohortDefinition(
        "started", "first_treatment_date",
        "started treatment; index = first attended treatment session",
        (("referred", "Referred to the clinic", None),
         ("accepted", "Referral accepted", "accepted"),
         ("started", "Started treatment (attended a treatment session)", "started"),
         *_COMMON_STEPS)),
    "itt": CohortDefinition(
        "itt", "first_accepted_date",
        "intention to treat: referral accepted; index = date of acceptance",
        (("referred", "Referred to the clinic", None),
         ("accepted", "Referral accepted", "accepted"),
         *_COMMON_STEPS)),
}
MAIN_COHORT = "started"


def _treated_sql(cfg: EvaluationConfig, window_end: dt.date, cohort: CohortDefinition) -> str:
    """Every referred person, with one eligibility flag per flow step, for one cohort."""
    return f"""
        CREATE OR REPLACE TEMP TABLE treated_steps AS
        WITH base AS (
            SELECT p.*, p.{cohort.index_col} AS index_date FROM persons p
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
               b.first_accepted_date IS NOT NULL AS accepted,
               b.first_treatment_date IS NOT NULL AS started,
               coalesce(b.index_date BETWEEN {sql_date(cfg.first_index_date)}
                        AND {sql_date(window_end)}, FALSE) AS in_window,
               q.offence_key IS NOT NULL AS qualifying,
               b.site IN ({sql_list(cfg.sites)}) AS at_site,
               coalesce(year(b.index_date) - b.birth_year >= {cfg.min_age}, FALSE) AS adult,
               coalesce(b.date_of_death > b.index_date, TRUE) AS alive,
               NOT EXISTS (SELECT 1 FROM custody k WHERE k.person_key = b.person_key
                           AND {in_custody('b.index_date', 'k')}) AS free
        FROM base b LEFT JOIN q ON q.person_key = b.person_key AND q.rn = 1"""


def _risk_set_sql(cfg: EvaluationConfig, cohort: CohortDefinition) -> str:
    """Pairs (treated person, eligible person) on the treated index date: a sequential
    target-trial emulation in which each treated index date starts a trial.

    Eligibility uses only what was known on that date: same site, qualifying offence within
    the window, alive, at liberty, adult and not yet referred. People referred (and treated)
    *later* are eligible controls until then — excluding them would choose controls with
    information from the future (Hernán & Robins).

    Each treated person allows a date window for a comparison person's qualifying offence; the
    windows are cut into (site, week) buckets so that the join is an equi-join, then filtered.
    Within a bucket the candidates are ranked at random (md5 of key and seed). With
    ``max_controls_per_trial`` set, a trial draws at most ceil(max / weeks in its window)
    candidates per bucket, a contiguous run of ranks starting at an offset drawn from the
    treated key (so trials draw different people): a simple random sample of the bucket, so a
    drawn candidate stands for ``sampling_weight`` = bucket size / number drawn candidates of
    that bucket (1 when the whole bucket is taken). The join then costs the number of drawn
    pairs, not the product of the pools: this is what keeps the cohort linear in people.
    """
    w, lookback = cfg.risk_set_window_days, cfg.qualifying_lookback_days
    seed = sql_str(str(cfg.seed))
    cap = cfg.comparison.max_controls_per_trial
    slots = "b.n_bucket" if cap is None else \
        f"least(b.n_bucket, CAST(ceil({cap} / t.n_weeks) AS BIGINT))"
    return f"""
        CREATE OR REPLACE TEMP TABLE risk_sets AS
        WITH t AS (
            SELECT person_key, site, index_date,
                   greatest(qualifying_date - {w}, index_date - {lookback}) AS q_from,
                   least(qualifying_date + {w}, index_date) AS q_to
            FROM treated),
        t_range AS (
            SELECT t.*, (q_from - DATE '1970-01-01') // 7 AS w_from,
                   (q_to - DATE '1970-01-01') // 7 AS w_to
            FROM t WHERE q_from <= q_to),
        t_weeks AS (  -- each treated person's window as (site, week) keys for an equi-join
            SELECT t.*, w_to - w_from + 1 AS n_weeks, unnest(range(w_from, w_to + 1)) AS week
            FROM t_range t),
        cand AS (
            SELECT q.*, c.site, (q.offence_date - DATE '1970-01-01') // 7 AS week
            FROM qualifying q JOIN persons c USING (person_key)),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY site, week
                                         ORDER BY md5(person_key || {seed}), person_key) - 1
                          AS rnk,
                   count(*) OVER (PARTITION BY site, week) AS n_bucket
            FROM cand),
        buckets AS (SELECT DISTINCT site, week, n_bucket FROM ranked),
        drawn AS (  -- which ranks of each bucket a trial draws, and what each stands for
            SELECT t.*, b.n_bucket, {slots} AS n_drawn,
                   md5_number_lower(t.person_key || {seed}) % b.n_bucket AS offset_rank
            FROM t_weeks t JOIN buckets b USING (site, week)),
        slots AS (
            SELECT d.*, (offset_rank + unnest(range(n_drawn))) % n_bucket AS rnk FROM drawn d)
        SELECT '{cohort.name}' AS cohort, t.person_key AS treated_key, t.index_date,
               c.person_key, q.offence_key AS qualifying_offence_key,
               q.offence_date AS qualifying_date,
               t.n_bucket / t.n_drawn AS sampling_weight
        FROM slots t
        JOIN ranked q ON q.site = t.site AND q.week = t.week AND q.rnk = t.rnk
             AND q.offence_date BETWEEN t.q_from AND t.q_to
        JOIN persons c ON c.person_key = q.person_key
        LEFT JOIN custody k ON k.person_key = c.person_key
             AND {in_custody('t.index_date', 'k')}
        WHERE coalesce(c.date_of_death > t.index_date, TRUE)
          AND coalesce(c.first_referral_date > t.index_date, TRUE)
          AND coalesce(c.{cohort.index_col} > t.index_date, TRUE)
          AND coalesce(c.first_treatment_date > t.index_date, TRUE)
          AND year(t.index_date) - c.birth_year >= {cfg.min_age}
          AND k.person_key IS NULL  -- not in custody on the index date"""


def _cohort_units(con: duckdb.DuckDBPyConnection, cfg: EvaluationConfig, window_end: dt.date,
                  cohort: CohortDefinition) -> tuple[str, str, str]:
    """Build one cohort's treated units, risk sets and naive comparison sample (temp tables)."""
    con.execute(_treated_sql(cfg, window_end, cohort))
    flags = [f for _, _, f in cohort.steps if f]
    con.execute("CREATE OR REPLACE TEMP TABLE treated AS SELECT * FROM treated_steps WHERE "
                + " AND ".join(flags))
    con.execute(_risk_set_sql(cfg, cohort))
    seed = sql_str(str(cfg.seed))
    # naive comparison: each eligible person never in this treated cohort enters once, on one
    # of their risk-set dates drawn deterministically (md5 of keys and seed): a date on which
    # they were truly eligible. People treated later are controls in the risk sets (sequential
    # trials) but not in this one-row-per-person sample, where they would appear twice.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE comparison AS SELECT * FROM risk_sets
        WHERE person_key NOT IN (SELECT person_key FROM treated)
        QUALIFY row_number() OVER (PARTITION BY person_key
                                   ORDER BY md5(person_key || treated_key || {seed})) = 1""")
    name = sql_str(cohort.name)
    units = f"""
        SELECT {name} AS cohort, person_key,
               'treated' AS arm, index_date, qualifying_offence_key, qualifying_date,
               NULL::VARCHAR AS treated_key, 1.0::DOUBLE AS sampling_weight FROM treated
        UNION ALL
        SELECT {name}, person_key, 'comparison', index_date,
               qualifying_offence_key, qualifying_date, treated_key, 1.0 FROM comparison"""
    sampled = con.execute("SELECT coalesce(max(sampling_weight), 1) > 1 FROM risk_sets"
                          ).fetchone()[0]
    return units, "SELECT * FROM risk_sets", _flow_sql(cfg, cohort, sampled)


def prepare_views(con: duckdb.DuckDBPyConnection, extract_id: str) -> None:
    """Temp views of one extract's staged tables, custody spells and linked persons."""
    create_inputs(con, extract_id)
    con.execute("CREATE OR REPLACE TEMP VIEW persons AS SELECT * EXCLUDE (extract_id) "
                f"FROM analysis.persons WHERE extract_id = {sql_str(extract_id)}")


def build_units(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                extraction: dt.date) -> CohortCounts:
    """Write units, risk sets and flow for every cohort definition (main: ``started``)."""
    prepare_views(con, extract_id)
    window_end = cfg.index_window_end(extraction)
    con.execute(_qualifying_sql(cfg, window_end))
    for i, cohort in enumerate(COHORTS.values()):
        units, risk_sets, flow = _cohort_units(con, cfg, window_end, cohort)
        verb = "CREATE OR REPLACE TEMP TABLE {} AS " if i == 0 else "INSERT INTO {} "
        con.execute(verb.format("all_units") + units)
        con.execute(verb.format("all_risk_sets") + risk_sets)
        con.execute(verb.format("all_flow") + flow)
        if cohort.name == MAIN_COHORT:
            n_t, n_pool, n_pairs = con.execute(
                "SELECT (SELECT count(*) FROM treated), (SELECT count(*) FROM comparison), "
                "(SELECT count(*) FROM risk_sets)").fetchone()
    # integer surrogate keys: a unit (cohort, person) gets a BIGINT id, numbered in a fixed
    # order so that the same extract always gives the same ids (the pair units of
    # ``analysis.rs_units`` continue the numbering)
    write_extract_rows(con, "analysis.units", """
        SELECT $eid AS extract_id, cohort,
               row_number() OVER (ORDER BY cohort, person_key) AS unit_id,
               * EXCLUDE (cohort) FROM all_units""", extract_id)
    for table in ("risk_sets", "flow"):
        target = "cohort_flow" if table == "flow" else table
        write_extract_rows(con, f"analysis.{target}",
                           f"SELECT $eid AS extract_id, * FROM all_{table}", extract_id)
    unlinked = con.execute("SELECT count(*) FROM clinic_referrals r ANTI JOIN police_persons p "
                           "USING (person_key)").fetchone()[0]
    return CohortCounts(n_t, n_pool, n_pairs, unlinked)


def _flow_sql(cfg: EvaluationConfig, cohort: CohortDefinition, sampled: bool = False) -> str:
    """Counts at each eligibility step, treated and comparison arms (a CONSORT diagram's data)."""
    parts = []
    flags: list[str] = []
    name = sql_str(cohort.name)
    for i, (step, label, flag) in enumerate(cohort.steps):
        if flag:
            flags.append(flag)
        cond = " AND ".join(flags) or "TRUE"
        parts.append(f"SELECT {name} AS cohort, 'treated' AS arm, {i} AS step_no, "
                     f"{sql_str(step)} AS step, {sql_str(label)} AS label, "
                     f"count(*) FILTER (WHERE {cond}) AS n FROM treated_steps")
    comparison_steps = (
        ("qualifying", "Qualifying stalking/harassment offence in the study period",
         "SELECT count(DISTINCT person_key) FROM qualifying"),
        ("site", "At a study site",
         "SELECT count(DISTINCT q.person_key) FROM qualifying q JOIN persons p USING "
         f"(person_key) WHERE p.site IN ({sql_list(cfg.sites)})"),
        ("eligible", "Eligible on a treated person's index date, including people treated "
         "later (comparison pool" + ("; those drawn in the risk sets' random samples)"
                                     if sampled else ")"),
         "SELECT count(DISTINCT person_key) FROM risk_sets"),
        ("never_treated", "Of whom never in the treated cohort (one-row-per-person sample)",
         "SELECT count(*) FROM comparison"),
    )
    for i, (step, label, sql) in enumerate(comparison_steps):
        parts.append(f"SELECT {name}, 'comparison', {i}, {sql_str(step)}, {sql_str(label)}, "
                     f"({sql})")
    return "SELECT * FROM (" + " UNION ALL ".join(parts) + ")"
