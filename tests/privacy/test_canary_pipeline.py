"""Canary test (issue 12.1-2): every identifier kind planted in every column of every file,
then the pipeline is run as an evaluator runs it; no canary may be found afterwards in the
DuckDB warehouse (its bytes and every text value), the reports and exports, DAGSTER_HOME (run
history, event logs) or anything printed or logged."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil

import duckdb
import pytest

from pipeline.cli import _instance, run_extract
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.extract_format import sha256_file
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings
from tests.privacy.canaries import all_canaries, search_terms

CANARIES = [v for _, v in all_canaries()]


def plant(folder, tables) -> int:
    """Row i, column j of each table gets canary (i + j) mod K: every column of every file
    carries every canary kind. Returns how many values were planted."""
    planted = 0
    for table in tables:
        path = folder / load_contract(table).file
        lines = path.read_text().splitlines()
        width = len(lines[0].split(","))
        for i in range(len(CANARIES) + width):
            fields = lines[1 + i].split(",")
            j = i % width
            fields[j] = CANARIES[(i + j) % len(CANARIES)]
            lines[1 + i] = ",".join(fields)
            planted += 1
        path.write_text("\n".join(lines) + "\n")
    m = json.loads((folder / "manifest.json").read_text())
    for table in tables:
        name = load_contract(table).file
        m["files"][name]["sha256"] = sha256_file(folder / name)
    (folder / "manifest.json").write_text(json.dumps(m))
    return planted


def byte_hits(root, skip) -> dict[str, int]:
    """Files under ``root`` (except ``skip``) whose bytes contain a canary, case-folded."""
    hits = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.is_relative_to(skip):
            continue
        data = path.read_bytes().lower()
        n = sum(data.count(t) for t in search_terms())
        if n:
            hits[str(path.relative_to(root))] = n
    return hits


def _copy(warehouse):
    """A connection to a copy of the warehouse (the run's process may still hold the file)."""
    copy = warehouse.with_name("copy-" + warehouse.name)
    shutil.copyfile(warehouse, copy)
    wal = warehouse.with_name(warehouse.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return duckdb.connect(str(copy))


def warehouse_hits(warehouse) -> int:
    """Text values of every warehouse table containing a canary (compression-proof check)."""
    if not warehouse.exists():
        return 0
    con = _copy(warehouse)
    try:
        cols = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                           "WHERE database_name = current_database() AND NOT internal AND "
                           "data_type = 'VARCHAR'").fetchall()
        terms = "[" + ", ".join("'" + t.decode() + "'" for t in search_terms()) + "]"
        return sum(con.execute(
            f'SELECT count(*) FROM "{s}"."{t}" WHERE len(list_filter({terms}, '
            f'x -> contains(lower("{c}"), x))) > 0').fetchone()[0] for s, t, c in cols)
    finally:
        con.close()


@pytest.mark.parametrize("tables", [EXTRACT_TABLES, pytest.param(
    ("clinic_sessions",), marks=pytest.mark.slow)], ids=["every_file", "last_file_only"])
def test_no_canary_survives_a_run(tmp_path, monkeypatch, capfd, caplog, tables):
    settings = make_settings(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    params = SynthParams(n_people=400, seed=11, extraction_date=dt.date(2026, 10, 31))
    folder = write_extract(generate(params), settings.landing_dir, settings.truth_dir)
    planted = plant(folder, tables)
    # the search finds what was planted (a search that finds nothing proves nothing)
    assert sum(byte_hits(settings.landing_dir, tmp_path / "none").values()) >= planted
    # the persistent instance under DAGSTER_HOME, as the command line uses it (entered, so
    # that no instance left over by an earlier test in this process is used)
    with caplog.at_level(logging.DEBUG), _instance(settings) as instance:
        ok = run_extract(folder.name, settings, instance=instance)
    printed = capfd.readouterr()
    assert not ok
    assert "refused by the identifier guard" in printed.err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    text = (printed.out + printed.err + logged).lower()
    assert [t for t in search_terms() if t.decode() in text] == []
    assert byte_hits(tmp_path, skip=settings.landing_dir) == {}
    assert warehouse_hits(settings.warehouse) == 0
    if tables != EXTRACT_TABLES:  # the clean files were loaded: the search had data to see
        con = _copy(settings.warehouse)
        assert con.execute("SELECT count(*) FROM staging.police_persons").fetchone()[0] > 0
        con.close()
