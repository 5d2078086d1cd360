"""Every injectable fault is caught the way ``pipeline/synth/faults.py`` says it must be.

For each fault: the right rule fires on exactly the damaged rows, only those rows (and the rows
that depend on them) are quarantined or rejected, every other row is staged, the counts
reconcile for every file, and blocking or refusing errors are one line, name the file and
column and never echo a value.
"""

from __future__ import annotations

import duckdb
import pytest

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.reconcile import reconcile
from pipeline.synth.faults import FAULTS, apply_fault
from tests.ingest.conftest import data_lines, lines_of, run_all


def _by_outcome(outcome: str) -> list[str]:
    return [n for n, f in FAULTS.items() if f.expect.outcome == outcome]


def _assert_all_reconcile(con, eid: str, tables=EXTRACT_TABLES) -> None:
    for table in tables:
        rec = reconcile(con, eid, table)
        assert rec.reconciles, rec


def test_every_fault_has_a_test_family():
    covered = {"quarantine", "reject", "accept", "block", "refuse"}
    assert {f.expect.outcome for f in FAULTS.values()} <= covered
    assert len(FAULTS) >= 50


@pytest.mark.parametrize("name", _by_outcome("quarantine"))
def test_quarantine_faults(extract, name):
    injected = apply_fault(extract, name)
    con = duckdb.connect()
    result = run_all(con, extract)
    assert result.error is None, result.error
    eid = extract.name
    rule = injected.expect.rule_id
    table = injected.expect.table
    # the rule fires on exactly the damaged lines
    fired = lines_of(con, "SELECT line FROM quarantine.rows WHERE extract_id = ? AND "
                     "table_name = ? AND rule_id = ?", eid, table, rule)
    assert fired == set(injected.lines[table])
    # per table: quarantined = damaged + cascaded lines; staged = everything else
    for t in EXTRACT_TABLES:
        expected = set(injected.lines.get(t, [])) | set(injected.cascade.get(t, []))
        quarantined = lines_of(con, "SELECT line FROM quarantine.rows WHERE extract_id = ? "
                               "AND table_name = ?", eid, t)
        staged = lines_of(con, f"SELECT _line FROM staging.{t} WHERE _extract_id = ?", eid)
        assert quarantined == expected, t
        assert staged == data_lines(extract, t) - expected, t
    cascaded = {t for t, v in injected.cascade.items() if v}
    for t in cascaded:
        assert lines_of(con, "SELECT line FROM quarantine.rows WHERE extract_id = ? AND "
                        "table_name = ? AND rule_id LIKE '%.parent_quarantined'", eid, t) \
            == set(injected.cascade[t])
    _assert_all_reconcile(con, eid)
    # reasons name the rule's column, never a planted value
    reasons = " ".join(r[0] for r in con.execute("SELECT DISTINCT reason FROM quarantine.rows")
                       .fetchall())
    for value in injected.planted:
        if len(value) > 3:
            assert value not in reasons


@pytest.mark.parametrize("name", _by_outcome("reject"))
def test_rejected_line_faults(extract, name):
    injected = apply_fault(extract, name)
    con = duckdb.connect()
    result = run_all(con, extract)
    assert result.error is None, result.error
    eid, table = extract.name, injected.expect.table
    rejected = lines_of(con, "SELECT line FROM quarantine.rejected_lines WHERE extract_id = ? "
                        "AND table_name = ? AND rule_id = ?", eid, table, injected.expect.rule_id)
    assert rejected == set(injected.lines[table])
    staged = lines_of(con, f"SELECT _line FROM staging.{table} WHERE _extract_id = ?", eid)
    assert staged == data_lines(extract, table) - rejected
    assert not con.execute("SELECT count(*) FROM quarantine.rows").fetchone()[0]
    assert result.loads[table].rejected_lines == len(rejected)
    _assert_all_reconcile(con, eid)


@pytest.mark.parametrize("name", _by_outcome("accept"))
def test_harmless_faults_load_everything(extract, name):
    injected = apply_fault(extract, name)
    con = duckdb.connect()
    result = run_all(con, extract)
    assert result.error is None, result.error
    eid = extract.name
    assert not con.execute("SELECT count(*) FROM quarantine.rows").fetchone()[0]
    assert not con.execute("SELECT count(*) FROM quarantine.rejected_lines").fetchone()[0]
    for t in EXTRACT_TABLES:
        staged = lines_of(con, f"SELECT _line FROM staging.{t} WHERE _extract_id = ?", eid)
        assert staged == data_lines(extract, t), t
    _assert_all_reconcile(con, eid)
    if name == "blank_lines":
        # rows keep their physical line numbers across the blank lines
        path = extract / load_contract("police_offences").file
        text = path.read_text().split("\n")
        got = dict(con.execute("SELECT offence_key, _line FROM staging.police_offences")
                   .fetchall())
        for line, content in enumerate(text, start=1):
            if line > 1 and content:
                assert got[content.split(",")[0]] == line
        assert result.loads["police_offences"].blank_lines == 4
    if name == "bom":
        notes = con.execute("SELECT notes FROM meta.loads WHERE table_name = ?",
                            [injected.expect.table]).fetchone()[0]
        assert "byte-order mark" in notes
    if name in ("quoted_fields", "padded_values"):
        t = injected.expect.table
        key = load_contract(t).primary_key
        assert con.execute(f"SELECT count(*) FROM staging.{t} WHERE {key} LIKE '%\"%' "
                           f"OR {key} LIKE ' %'").fetchone()[0] == 0


def _assert_one_line_naming_file(message: str, table: str) -> None:
    assert "\n" not in message
    assert load_contract(table).file in message


@pytest.mark.parametrize("name", _by_outcome("block"))
def test_blocking_faults_stop_the_run(extract, name):
    con = duckdb.connect()
    if name == "changed_delivery":
        assert run_all(con, extract).error is None  # the first delivery is accepted
    injected = apply_fault(extract, name)
    # every file loads before any is staged, as in a Dagster run: an accepted extract stays
    # protected even while its other tables are being re-loaded
    result = run_all(con, extract, raw_first=name == "changed_delivery")
    exp = injected.expect
    assert result.error is not None, f"{name} slipped through"
    assert (result.error_table, result.error_phase) == (exp.table, exp.phase)
    message = str(result.error)
    assert exp.message in message
    _assert_one_line_naming_file(message, exp.table)
    eid = extract.name
    if exp.phase == "stage":
        # nothing of the blocked table reaches staging; the quarantine is kept for the report
        assert not con.execute(f"SELECT count(*) FROM staging.{exp.table} WHERE "
                               "_extract_id = ?", [eid]).fetchone()[0]
        assert con.execute("SELECT status FROM meta.stages WHERE extract_id = ? AND "
                           "table_name = ?", [eid, exp.table]).fetchone()[0] == "blocked"
        fired = lines_of(con, "SELECT line FROM quarantine.rows WHERE table_name = ? AND "
                         "rule_id = ?", exp.table, exp.rule_id or "")
        if exp.rule_id:
            assert fired == set(injected.lines[exp.table])


@pytest.mark.parametrize("name", _by_outcome("refuse"))
def test_identifier_guard_refuses_before_storing(extract, tmp_path, name):
    injected = apply_fault(extract, name)
    db = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    result = run_all(con, extract)
    exp = injected.expect
    assert result.error is not None, f"{name} slipped through the identifier guard"
    assert (result.error_table, result.error_phase) == (exp.table, "load")
    message = str(result.error)
    assert "identifier guard" in message and exp.message in message
    _assert_one_line_naming_file(message, exp.table)
    for value in injected.planted:
        assert value not in message
    # nothing of the refused file was written
    eid = extract.name
    assert not con.execute("SELECT count(*) FROM meta.loads WHERE extract_id = ? AND "
                           "table_name = ?", [eid, exp.table]).fetchone()[0]
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND "
                         "table_name = ?", [exp.table]).fetchone()[0]
    if exists:
        assert not con.execute(f"SELECT count(*) FROM raw.{exp.table}").fetchone()[0]
    con.execute("CHECKPOINT")
    con.close()
    stored = db.read_bytes()
    wal = db.with_suffix(".duckdb.wal")
    stored += wal.read_bytes() if wal.exists() else b""
    for value in injected.planted:
        assert value.encode() not in stored
