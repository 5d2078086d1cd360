"""The data-quality summary and report, and the Great Expectations attestation: counts only,
never a value from the files."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.attestation import RESULT_FORMAT, attest_staged, vectorisable
from pipeline.ingest.quality import data_quality_summary
from pipeline.ingest.quality_report import csv_safe, write_quality_report
from pipeline.synth.faults import apply_faults
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.ingest.conftest import run_all

FAULTS = ["not_allowed", "formula_injection", "unlinked_referral", "extra_field",
          "implausible_birth_year"]


@pytest.fixture(scope="module")
def faulty(clean_extract, tmp_path_factory):
    """A warehouse file with an earlier clean extract and a faulty current one (tests must
    not change it)."""
    tmp_path = tmp_path_factory.mktemp("faulty")
    earlier = write_extract(generate(SynthParams(n_people=400, seed=9,
                                                 extraction_date=dt.date(2026, 4, 30))),
                            tmp_path / "landing", tmp_path / "truth")
    extract = Path(shutil.copytree(clean_extract, tmp_path / "landing" / clean_extract.name))
    injected = apply_faults(extract, FAULTS)
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    assert run_all(con, earlier).error is None
    assert run_all(con, extract).error is None
    con.close()
    return db, extract.name, earlier.name, injected


@pytest.fixture()
def faulty_con(faulty):
    con = duckdb.connect(str(faulty[0]), read_only=True)
    yield (con, *faulty)
    con.close()


def test_summary_counts_every_row(faulty_con):
    con, db, eid, _, injected = faulty_con
    s = data_quality_summary(con, eid)
    assert s["reconciles"] and s["extraction_date"] == "2026-10-31"
    for t, row in s["tables"].items():
        assert row["received"] == row["loaded"] + row["quarantined"] + row["rejected"], t
        assert row["status"] == "staged"
    by = {i.fault: i for i in injected}
    assert s["quarantined_by_rule"]["police_offences.outcome.allowed"] == 3
    assert s["quarantined_by_rule"]["police_persons.birth_year.plausible"] == 3
    assert s["rejected_by_rule"] == {"police_offences.file.extra_fields": 2}
    offences = s["tables"]["police_offences"]
    cascaded = len(by["implausible_birth_year"].cascade["police_offences"])
    # 3 bad outcomes + 3 formulas + offences of the 3 quarantined people
    assert offences["quarantined"] == 6 + cascaded and offences["rejected"] == 2
    link = s["linkage"]
    assert link["linked_people"] == link["clinic_people"] - 1
    assert 0 < link["rate"] < 1
    # pure and read-only: it ran on a read-only connection; it yields plain JSON
    json.dumps(s)


def test_summary_of_an_unknown_extract_is_empty(faulty_con):
    con, *_ = faulty_con
    s = data_quality_summary(con, "no-such-extract")
    assert s["totals"] == {"received": 0, "loaded": 0, "quarantined": 0, "rejected": 0}
    assert not s["reconciles"]
    assert data_quality_summary(duckdb.connect(), "x")["tables"]["police_persons"]["status"] \
        == "not_loaded"


def test_report_lists_rules_keys_and_trends_without_values(faulty_con, tmp_path):
    con, _, eid, earlier, injected = faulty_con
    paths = write_quality_report(con, eid, tmp_path / "report")
    html = paths["html"].read_text()
    for rule in ("police_offences.outcome.allowed", "police_offences.victim_relationship.formula",
                 "clinic_referrals.person_key.references", "file.extra_fields",
                 "police_offences.person_key.parent_quarantined"):
        assert rule in html
    assert earlier in html  # the trend column names the previous extract
    assert "Completeness by column" in html and "Linkage" in html
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    s = data_quality_summary(con, eid)
    assert len(rows) == con.execute(
        "SELECT (SELECT count(*) FROM quarantine.rows WHERE extract_id = $1) + "
        "(SELECT count(*) FROM quarantine.rejected_lines WHERE extract_id = $1)",
        [eid]).fetchone()[0]
    assert {r["file"] for r in rows} >= {"police_offences.csv", "police_persons.csv"}
    assert json.loads(paths["json"].read_text()) == s
    planted = [v for i in injected for v in i.planted if len(v) > 3]
    assert planted
    for text in (html, paths["csv"].read_text()):
        for value in planted:
            assert value not in text


def test_blocked_extract_report_shows_the_message(extract, tmp_path):
    apply_faults(extract, ["quarantine_share"])
    con = duckdb.connect()
    result = run_all(con, extract)
    assert result.error_phase == "stage"
    html = write_quality_report(con, extract.name, tmp_path / "r")["html"].read_text()
    assert "blocked" in html and "above the 5% limit" in html


def test_csv_cells_cannot_run_as_formulas():
    assert csv_safe("=1+2") == "'=1+2" and csv_safe("@x") == "'@x" and csv_safe("ok") == "ok"
    assert csv_safe(None) == "" and csv_safe(12) == "12"


def test_attestation_passes_on_staged_rows_and_catches_what_slipped_through(
        clean_extract, tmp_path):
    db = tmp_path / "w.duckdb"
    folder = Path(shutil.copytree(clean_extract, tmp_path / "landing" / clean_extract.name))
    con = duckdb.connect(str(db))
    assert run_all(con, folder).error is None
    eid = clean_extract.name
    for t in EXTRACT_TABLES:
        att = attest_staged(con, eid, load_contract(t))
        assert att.success, att.failed
        assert att.rows_checked == att.rows_staged > 0
    # plant rows that quarantine would have stopped, straight into staging
    con.execute("UPDATE staging.police_offences SET outcome_date = NULL, "
                "victim_relationship = 'SENTINEL-VALUE-123' WHERE _line IN "
                "(SELECT _line FROM staging.police_offences WHERE outcome = 'convicted' "
                "ORDER BY _line LIMIT 2)")
    con.execute("UPDATE staging.clinic_sessions SET session_date = DATE '1999-01-01' "
                "WHERE _line = (SELECT min(_line) FROM staging.clinic_sessions)")
    att = attest_staged(con, eid, load_contract("police_offences"))
    failed = {r.rule: r.unexpected_count for r in att.failed}
    assert failed["police_offences.outcome_date.required_when"] == 2
    assert failed["police_offences.victim_relationship.allowed"] == 2
    sessions = attest_staged(con, eid, load_contract("clinic_sessions"))
    assert {r.rule for r in sessions.failed} == {"clinic_sessions.session_date.within_parent"}
    # ranges are caught on both of GE's paths: vectorised (int, nanosecond dates) and
    # per value (a date past the nanosecond range keeps its dtype)
    con.execute("UPDATE staging.police_persons SET birth_year = 1800 "
                "WHERE _line = (SELECT min(_line) FROM staging.police_persons)")
    persons = attest_staged(con, eid, load_contract("police_persons"))
    assert {r.rule: r.unexpected_count for r in persons.failed} == {
        "police_persons.birth_year.plausible": 1}
    con.execute("UPDATE staging.police_offences SET recorded_date = DATE '3000-01-01' "
                "WHERE _line = (SELECT max(_line) FROM staging.police_offences)")
    failed = {r.rule: r.unexpected_count
              for r in attest_staged(con, eid, load_contract("police_offences")).failed}
    assert failed["police_offences.recorded_date.not_after_extraction"] == 1
    # results and metadata carry counts only
    text = json.dumps([dataclasses.asdict(r) for r in att.results])
    stored = str(con.execute("SELECT * FROM meta.attestations").fetchall())
    assert "SENTINEL" not in text and "SENTINEL" not in stored
    assert RESULT_FORMAT["exclude_unexpected_values"] and \
        RESULT_FORMAT["partial_unexpected_count"] == 0


def test_frames_reach_ge_in_vectorisable_dtypes_with_the_same_values():
    frame = pd.DataFrame({
        "year": np.array([1980, 1990], dtype="int32"),
        "day": pd.to_datetime(["2026-01-02", None]).astype("datetime64[us]"),
        "far": np.array(["2026-01-02", "3000-01-01"], dtype="datetime64[us]"),
        "empty": pd.Series([None, None], dtype="datetime64[us]"),
        "text": ["a", None]})
    out = vectorisable(frame)
    assert out["year"].dtype == "int64" and out["day"].dtype == "datetime64[ns]"
    assert out["empty"].dtype == "datetime64[ns]"
    assert out["far"].dtype == "datetime64[us]"  # outside the nanosecond range: unchanged
    for name in frame:
        assert frame[name].astype(object).equals(out[name].astype(object)), name
    assert frame["year"].dtype == "int32"  # the caller's frame is not changed


def test_attestation_samples_large_tables(clean_extract, tmp_path):
    folder = Path(shutil.copytree(clean_extract, tmp_path / "landing" / clean_extract.name))
    con = duckdb.connect()
    assert run_all(con, folder).error is None
    att = attest_staged(con, clean_extract.name, load_contract("police_offences"), max_rows=500)
    assert att.success and att.rows_staged > 1000
    # about 500 rows (each row in or out by a seeded hash of its key), the same rows each time
    share = 500 / att.rows_staged
    spread = 4 * (att.rows_staged * share * (1 - share)) ** 0.5
    assert abs(att.rows_checked - 500) < spread
    again = attest_staged(con, clean_extract.name, load_contract("police_offences"), max_rows=500)
    assert again == att
    # a planted row is caught when, and only when, the sample holds it
    from pipeline.contracts.expectations import attestation_sql
    from pipeline.ingest.attestation import SAMPLE_SEED

    sql = attestation_sql(load_contract("police_offences"), sample=share, seed=SAMPLE_SEED).sql
    eid = clean_extract.name
    assert "$xdate" not in sql  # offences have no parent period
    sampled = set(con.execute(sql, {"eid": eid}).df()["offence_key"])
    assert len(sampled) == att.rows_checked
    inside = sorted(sampled)[0]
    outside = con.execute("SELECT min(offence_key) FROM staging.police_offences WHERE "
                          "NOT list_contains(?, offence_key)", [sorted(sampled)]).fetchone()[0]
    for key, caught in ((inside, True), (outside, False)):
        con.execute("UPDATE staging.police_offences SET outcome = 'SENTINEL' "
                    "WHERE offence_key = ?", [key])
        att = attest_staged(con, eid, load_contract("police_offences"), max_rows=500)
        assert (not att.success) is caught, key
        con.execute("UPDATE staging.police_offences SET outcome = 'convicted' "
                    "WHERE offence_key = ?", [key])
