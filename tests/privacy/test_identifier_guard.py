"""The identifier guard screens every value of every column, whatever its type, code list or
letter case: each canary kind planted in each column of each file is found (set-based SQL on
the parsed rows, the same code path ``load_raw`` runs before anything is written)."""

from __future__ import annotations

import time

import duckdb
import pytest

from pipeline.contracts.rules import ident, sql_str
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.identifiers import find_identifiers, misfit_sql, value_checks
from tests.privacy.canaries import all_canaries

XYEAR = 2026


def _planted(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, str, str]]:
    """TEMP ``planted``: one row per (column, canary), every other value empty."""
    contract = load_contract(table)
    rows, plan = [], []
    line = 2
    for col in contract.column_names:
        for kind, value in all_canaries():
            rows.append([line] + [value if c == col else None for c in contract.column_names])
            plan.append((line, col, kind))
            line += 1
    cols = ", ".join(f"{ident(c)} VARCHAR" for c in contract.column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE planted (_line BIGINT, {cols})")
    marks = ", ".join("?" for _ in range(len(contract.column_names) + 1))
    con.executemany(f"INSERT INTO planted VALUES ({marks})", rows)
    return plan


@pytest.mark.parametrize("table", EXTRACT_TABLES)
def test_every_kind_in_every_column_is_found(table):
    contract = load_contract(table)
    con = duckdb.connect()
    plan = _planted(con, table)
    select, where = misfit_sql(contract, contract.column_names)
    con.execute(f"CREATE TEMP TABLE m AS SELECT _line, {select} FROM planted WHERE {where}")
    preds = value_checks(contract, contract.column_names, extraction_year=XYEAR)
    flagged = " OR ".join(f"({p})" for _, _, p in preds)
    found = {r[0] for r in con.execute(f"SELECT _line FROM m WHERE {flagged}").fetchall()}
    missed = [(col, kind) for line, col, kind in plan if line not in found]
    assert missed == []
    # the findings name columns and kinds, never a value
    findings = find_identifiers(con, "m", contract, contract.column_names,
                                extraction_year=XYEAR)
    text = " ".join(f.describe() for f in findings).lower()
    assert {f.column for f in findings} == set(contract.column_names)
    assert all(v.lower() not in text for _, v in all_canaries())


def test_recent_wrongly_written_event_date_is_not_a_date_of_birth():
    """A dd/mm/yyyy offence date of last year is a format error (quarantined), not a DOB; the
    same shape 18+ years back, or with a two-digit year, is refused as a possible DOB."""
    contract = load_contract("police_offences")
    con = duckdb.connect()
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in contract.column_names
                     if c != "offence_date")
    values = ["03/02/2025", "03/02/2008", "03/02/85"]
    con.execute("CREATE TEMP TABLE t AS SELECT row_number() OVER () + 1 AS _line, v AS "
                f"offence_date, {cols} FROM (VALUES {', '.join(f'({sql_str(v)})' for v in values)}"
                ") x(v)")
    select, where = misfit_sql(contract, contract.column_names)
    con.execute(f"CREATE TEMP TABLE m AS SELECT _line, {select} FROM t WHERE {where}")
    found = find_identifiers(con, "m", contract, contract.column_names, extraction_year=XYEAR)
    dob = [f for f in found if f.kind == "full dates of birth"]
    assert [(f.column, f.rows, f.first_line) for f in dob] == [("offence_date", 2, 3)]


def test_scan_of_a_clean_million_row_file_is_fast():
    """Set-based screen: 1M clean offence rows are screened in a few seconds on 2 cores."""
    contract = load_contract("police_offences")
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE t AS SELECT range + 2 AS _line, "
        "'OF' || lpad(range::VARCHAR, 10, '0') AS offence_key, "
        "'PK' || upper(substr(md5(range::VARCHAR), 1, 16)) AS person_key, "
        "CASE WHEN range % 3 = 0 THEN NULL ELSE "
        "'VK' || upper(substr(md5((range + 7)::VARCHAR), 1, 16)) END AS victim_key, "
        "'2020-01-05' AS offence_date, '2020-01-09' AS recorded_date, "
        "['S2A', 'S4', 'VAP', 'OTH'][range % 4 + 1] AS offence_code, "
        "'ex_partner' AS victim_relationship, 'convicted' AS outcome, "
        "'2020-06-01' AS outcome_date, 'fine' AS disposal, NULL::VARCHAR AS custody_release_date "
        "FROM range(1000000)")
    select, where = misfit_sql(contract, contract.column_names)
    start = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE m AS SELECT _line, {select} FROM t WHERE {where}")
    found = find_identifiers(con, "m", contract, contract.column_names, extraction_year=XYEAR)
    seconds = time.perf_counter() - start
    assert found == []
    assert con.execute("SELECT count(*) FROM m").fetchone()[0] == 0
    print(f"identifier screen of 1M clean rows: {seconds:.2f} s")
    assert seconds < 10, f"identifier screen took {seconds:.1f} s for 1M rows"
