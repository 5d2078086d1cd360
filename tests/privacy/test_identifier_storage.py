"""No identifier-shaped value of a hostile file reaches any table of the warehouse (issue 12).

Two gaps of the value patterns: a full date of birth written as a valid YYYY-MM-DD date (in
the date of death, or in a clinic date) and a single word such as a surname in a coded column.
The first is refused like any other date of birth; the second breaks its column's contract and
is quarantined, and ``raw.*`` stores a marker instead of it. Every text column of every table
of the warehouse is then searched for the planted canaries.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.extract_format import sha256_file
from pipeline.ingest.identifiers import WITHHELD
from tests.ingest.conftest import run_all

WORDS = ("Zqharker", "SMITHCANARY", "zqcanary")
TERMS = ("zqharker", "smithcanary", "zqcanary", "1985-03-14", "1979-11-02")


def _edit(folder: Path, table: str, edits: dict[int, dict[str, str]]) -> None:
    """Set columns of data rows (0 = first data row) of a delivered file; fix the manifest."""
    path = folder / load_contract(table).file
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    for i, values in edits.items():
        fields = lines[1 + i].split(",")
        for column, value in values.items():
            fields[header.index(column)] = value
        lines[1 + i] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][path.name]["sha256"] = sha256_file(path)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def warehouse_hits(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table.column whose text contains a planted value (case-folded)."""
    cols = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = current_database() AND NOT internal AND "
                       "data_type = 'VARCHAR'").fetchall()
    terms = "[" + ", ".join(f"'{t}'" for t in TERMS) + "]"
    hits = {}
    for s, t, c in cols:
        n = con.execute(f'SELECT count(*) FROM "{s}"."{t}" WHERE len(list_filter({terms}, '
                        f'x -> contains(lower("{c}"::VARCHAR), x))) > 0').fetchone()[0]
        if n:
            hits[f"{s}.{t}.{c}"] = n
    return hits


def coded_columns(table: str) -> list[str]:
    """Columns whose values are codes, numbers, dates or booleans (not keys)."""
    return [c.name for c in load_contract(table).columns if not c.pseudonymised
            and not c.unique and (c.allowed or c.lookup or c.type != "VARCHAR")]


def _rows(folder: Path, table: str) -> list[dict[str, str]]:
    lines = (folder / load_contract(table).file).read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def _childless(folder: Path, table: str, key: str, child: str | None) -> list[int]:
    """Data rows whose key no row of ``child`` refers to (quarantining them cascades nowhere,
    so the files stay under the quarantine limit)."""
    used = {r[key] for r in _rows(folder, child)} if child else set()
    return [i for i, r in enumerate(_rows(folder, table)) if r[key] not in used]


CHILDREN = {"police_persons": ("person_key", "clinic_referrals"),
            "police_offences": ("offence_key", None),
            "clinic_referrals": ("referral_key", "clinic_sessions"),
            "clinic_sessions": ("session_key", None)}


def test_single_words_in_coded_columns_are_quarantined_but_never_stored(extract, tmp_path):
    planted = 0
    for table in EXTRACT_TABLES:
        rows = _childless(extract, table, *CHILDREN[table])
        columns = coded_columns(table)[:3]
        edits = {rows[-1 - j]: {col: WORDS[j % len(WORDS)]} for j, col in enumerate(columns)}
        _edit(extract, table, edits)
        planted += len(edits)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = run_all(con, extract)
    assert result.error is None, result.error
    assert planted >= 10
    quarantined = con.execute("SELECT count(DISTINCT (table_name, line)) FROM quarantine.rows"
                              ).fetchone()[0]
    assert quarantined >= planted  # each planted row was quarantined, as before
    markers = sum(con.execute(
        f"SELECT count(*) FROM raw.{t} WHERE " + " OR ".join(
            f"starts_with(\"{c}\"::VARCHAR, '{WITHHELD}')" for c in coded_columns(t))
    ).fetchone()[0] for t in EXTRACT_TABLES)
    assert markers == planted  # raw keeps a marker where the value was
    assert warehouse_hits(con) == {}


@pytest.mark.parametrize(("table", "column", "extra"), [
    ("police_persons", "date_of_death", {"birth_year": "1985"}),
    ("clinic_referrals", "referral_date", {}),
    ("clinic_sessions", "session_date", {}),
], ids=["date_of_death", "referral_date", "session_date"])
def test_a_date_of_birth_written_as_a_valid_date_is_refused(extract, tmp_path, table, column,
                                                            extra):
    dob = "1985-03-14" if extra else "1979-11-02"
    _edit(extract, table, {3: {column: dob, **extra}})
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = run_all(con, extract)
    assert result.error_table == table and result.error_phase == "load"
    message = str(result.error)
    assert "refused by the identifier guard" in message and "full dates of birth" in message
    assert f"column {column!r}" in message and "first at line 5" in message
    assert dob not in message and "\n" not in message
    assert warehouse_hits(con) == {}


def test_real_dates_of_death_and_clinic_dates_are_not_refused(extract, tmp_path):
    """The clean extract loads: its dates of death lie long after birth and its clinic dates
    are recent."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = run_all(con, extract)
    assert result.error is None
    assert con.execute("SELECT count(*) FROM raw.police_persons WHERE date_of_death IS NOT NULL"
                       ).fetchone()[0] > 0


def test_without_the_marker_the_words_would_be_stored(extract, tmp_path, monkeypatch):
    """The search is not vacuous: storing the delivered values puts the words in raw.*."""
    import pipeline.ingest.load as load

    monkeypatch.setattr(load, "stored_columns", lambda contract: ", ".join(
        f'"{c}"' for c in contract.column_names))
    table = "police_offences"
    rows = _childless(extract, table, *CHILDREN[table])
    _edit(extract, table, {rows[-1]: {"victim_relationship": WORDS[0]}})
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert run_all(con, extract).error is None
    assert warehouse_hits(con) == {"raw.police_offences.victim_relationship": 1}
