"""Loading and staging as a whole: a clean extract passes untouched, re-loading is idempotent,
accepted extracts are protected, quarantine holds no values, thresholds are configurable."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from pipeline.contracts.rules import check_plan
from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.load import extraction_date, load_raw, stage
from pipeline.ingest.manifest import read_manifest
from pipeline.ingest.reconcile import reconcile, unresolved_references
from pipeline.synth.faults import apply_fault, apply_faults
from tests.ingest.conftest import data_lines, run_all

TABLE_COUNTS = ("raw.{t}", "staging.{t}")


def _counts(con, eid: str) -> dict:
    out = {}
    for t in EXTRACT_TABLES:
        for pattern in TABLE_COUNTS:
            name = pattern.format(t=t)
            out[name] = con.execute(f"SELECT count(*) FROM {name} WHERE _extract_id = ?",
                                    [eid]).fetchone()[0]
    for book in ("quarantine.rows", "quarantine.rejected_lines", "meta.loads", "meta.stages",
                 "meta.column_profile", "meta.extracts"):
        out[book] = con.execute(f"SELECT count(*) FROM {book} WHERE extract_id = ?",
                                [eid]).fetchone()[0]
    return out


def test_clean_extract_passes_with_nothing_quarantined(clean_extract):
    con = duckdb.connect()
    result = run_all(con, clean_extract)
    assert result.error is None
    eid = clean_extract.name
    for t in EXTRACT_TABLES:
        staged = {r[0] for r in con.execute(f"SELECT _line FROM staging.{t}").fetchall()}
        assert staged == data_lines(clean_extract, t)
        assert result.stages[t].quarantined_rows == 0
        assert reconcile(con, eid, t).reconciles
        assert not any(unresolved_references(con, eid, t).values())
    assert not con.execute("SELECT count(*) FROM quarantine.rows").fetchone()[0]
    assert not con.execute("SELECT count(*) FROM quarantine.rejected_lines").fetchone()[0]
    assert str(extraction_date(con, eid)) == "2026-10-31"
    # staging holds contract types, so the cohort can rely on them
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'staging' AND table_name = 'police_offences'"
                             ).fetchall())
    assert types["offence_date"] == "DATE" and types["_line"] == "BIGINT"


def test_reloading_the_same_extract_is_idempotent(extract):
    apply_faults(extract, ["not_allowed", "extra_field"])
    con = duckdb.connect()
    assert run_all(con, extract).error is None
    first = _counts(con, extract.name)
    assert first["quarantine.rows"] == 3 and first["quarantine.rejected_lines"] == 2
    assert run_all(con, extract).error is None
    assert _counts(con, extract.name) == first


def test_a_blocked_delivery_can_be_replaced_under_the_same_id(clean_extract, extract):
    apply_fault(extract, "duplicate_key")
    con = duckdb.connect()
    assert "duplicated" in str(run_all(con, extract).error)
    # the provider fixes the file; the extract was never accepted, so the same id is fine
    for path in clean_extract.iterdir():
        shutil.copy(path, extract / path.name)
    assert run_all(con, extract).error is None
    assert reconcile(con, extract.name, "police_offences").reconciles


def test_stage_needs_its_parents_staged(extract):
    con = duckdb.connect()
    manifest = read_manifest(extract)
    for t in EXTRACT_TABLES:
        load_raw(con, manifest, load_contract(t))
    with pytest.raises(ExtractError, match="police_persons.csv has not been staged"):
        stage(con, manifest.extract_id, load_contract("police_offences"))


def test_quarantine_holds_keys_of_the_agreed_format_and_fixed_reasons(extract):
    apply_faults(extract, ["bad_key_format", "formula_injection", "orphan_offence",
                           "missing_field"])
    con = duckdb.connect()
    assert run_all(con, extract).error is None
    contract = load_contract("police_offences")
    pattern = re.compile(contract.column("offence_key").pattern)
    keys = [r[0] for r in con.execute("SELECT record_key FROM quarantine.rows UNION ALL "
                                      "SELECT record_key FROM quarantine.rejected_lines")
            .fetchall()]
    assert None in keys  # malformed keys are not echoed
    assert all(k is None or pattern.fullmatch(k) for k in keys)
    reasons = {r.reason for r in check_plan(contract).rules}
    stored = {r[0] for r in con.execute("SELECT DISTINCT reason FROM quarantine.rows")
              .fetchall()}
    assert stored <= reasons
    # the formula values themselves appear nowhere outside raw
    for book in ("quarantine.rows", "quarantine.rejected_lines", "meta.loads", "meta.stages"):
        text = str(con.execute(f"SELECT * FROM {book}").fetchall())
        assert "HYPERLINK" not in text and "cmd|calc" not in text


def test_quarantine_threshold_is_configurable(extract):
    apply_fault(extract, "quarantine_share")
    con = duckdb.connect()
    manifest = read_manifest(extract)
    for t in ("police_persons", "police_offences"):
        load_raw(con, manifest, load_contract(t))
    stage(con, manifest.extract_id, load_contract("police_persons"))
    counts = stage(con, manifest.extract_id, load_contract("police_offences"),
                   max_quarantine_share=0.5)
    assert counts.quarantined_rows > 0 and counts.reconciles
    with pytest.raises(ExtractError, match="above the 1% limit"):
        stage(con, manifest.extract_id, load_contract("police_offences"),
              max_quarantine_share=0.01)
