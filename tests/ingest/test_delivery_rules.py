"""Issue 12 items 3 and 4 at the ingest level: one extract id, no path leaves its folder, the
extraction date is judged as such, mixed line breaks are refused with the line, and the
timeline rules across tables quarantine what cannot have happened."""

from __future__ import annotations

import datetime as dt
import json
import os

import duckdb
import pytest

from pipeline.contracts.schema import load_contract
from pipeline.extract_format import sha256_file
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.manifest import check_study_window, read_manifest
from tests.ingest.conftest import run_all


def _rehash(folder, *names):
    m = json.loads((folder / "manifest.json").read_text())
    for name in names:
        m["files"][name]["sha256"] = sha256_file(folder / name)
    (folder / "manifest.json").write_text(json.dumps(m))


def _set_manifest(folder, **fields):
    m = json.loads((folder / "manifest.json").read_text())
    m.update(fields)
    (folder / "manifest.json").write_text(json.dumps(m))


def _one_line(exc: ExtractError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_manifest_id_must_name_the_folder(extract):
    _set_manifest(extract, extract_id="another-extract")
    with pytest.raises(ExtractError) as err:
        read_manifest(extract)
    assert "differs from the folder name" in _one_line(err.value)
    assert "another-extract" not in str(err.value)


@pytest.mark.parametrize("entry", ["../../x.csv", "notes.txt", "/etc/passwd"])
def test_manifest_entry_outside_the_specification_is_refused(extract, entry):
    m = json.loads((extract / "manifest.json").read_text())
    m["files"][entry] = {"sha256": "0" * 64, "rows": 1}
    (extract / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExtractError) as err:
        read_manifest(extract)
    text = _one_line(err.value)
    assert "not in the specification" in text and entry not in text


def test_symlinked_data_file_is_refused_without_echo(extract, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("root:x:0:0:Zqharker Smithcanary:/root:/bin/bash\n")
    target = extract / "clinic_sessions.csv"
    target.unlink()
    os.symlink(outside, target)
    _rehash(extract, "clinic_sessions.csv")
    result = run_all(duckdb.connect(), extract)
    assert result.error_table == "clinic_sessions"
    text = _one_line(result.error)
    assert "symbolic link" in text and "zqharker" not in text.lower()


def test_future_extraction_date_is_refused_as_such(extract):
    _set_manifest(extract, extraction_date="2099-12-31")
    with pytest.raises(ExtractError) as err:
        read_manifest(extract, today=dt.date(2026, 11, 30))
    assert "extraction_date 2099-12-31 is in the future" in _one_line(err.value)


def test_extraction_date_before_study_start_is_refused(extract):
    _set_manifest(extract, extraction_date="2001-01-31")
    manifest = read_manifest(extract)
    with pytest.raises(ExtractError) as err:
        check_study_window(manifest, dt.date(2019, 6, 1))
    assert "before the study start (2019-06-01)" in _one_line(err.value)


def test_malformed_manifest_names_no_value(extract):
    _set_manifest(extract, extraction_date="zqcanary.harker@example.org")
    with pytest.raises(ExtractError) as err:
        read_manifest(extract)
    assert "malformed" in _one_line(err.value) and "zqcanary" not in str(err.value)


def test_provider_carrying_a_contact_is_refused(extract):
    _set_manifest(extract, provider="07700 900461")
    with pytest.raises(ExtractError) as err:
        read_manifest(extract)
    assert "900461" not in _one_line(err.value)


@pytest.mark.parametrize("header_crlf", [True, False])
def test_mixed_line_breaks_are_refused_with_the_line(extract, header_crlf):
    path = extract / "police_offences.csv"
    lines = path.read_bytes().split(b"\n")
    body = [x.rstrip(b"\r") for x in lines]
    first, other = (b"\r\n", b"\n") if header_crlf else (b"\n", b"\r\n")
    text = b"".join(line + (other if i == 6 else first) for i, line in enumerate(body[:-1]))
    path.write_bytes(text)
    _rehash(extract, "police_offences.csv")
    result = run_all(duckdb.connect(), extract)
    assert result.error_table == "police_offences"
    assert "line 7 ends differently from line 1" in _one_line(result.error)


def _edit(folder, table, row, **values):
    """Set columns of data row ``row`` (0-based) of a table's file; re-hash the manifest."""
    contract = load_contract(table)
    path = folder / contract.file
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[row + 1].split(",")
    for col, val in values.items():
        fields[header.index(col)] = val
    lines[row + 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    _rehash(folder, contract.file)
    return dict(zip(header, fields, strict=True)), row + 2


def _rows(folder, table):
    lines = (folder / load_contract(table).file).read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, x.split(","), strict=True)) for x in lines[1:]]


def test_timeline_rules_quarantine_impossible_rows(extract):
    persons = {p["person_key"]: i for i, p in enumerate(_rows(extract, "police_persons"))}
    refs = _rows(extract, "clinic_referrals")
    sessions = _rows(extract, "clinic_sessions")
    offences = _rows(extract, "police_offences")
    # a referred person with a session: make them die the day before that session
    ses_i, ses = next((i, s) for i, s in enumerate(sessions) if s["attended"] == "true")
    ref = next(r for r in refs if r["referral_key"] == ses["referral_key"])
    death = dt.date.fromisoformat(ses["session_date"]) - dt.timedelta(days=1)
    person_row = persons[ref["person_key"]]
    _edit(extract, "police_persons", person_row, date_of_death=death.isoformat())
    # another person's offence: committed before their birth year
    off_i, off = next((i, o) for i, o in enumerate(offences)
                      if o["person_key"] != ref["person_key"])
    births = {p["person_key"]: int(p["birth_year"]) for p in _rows(extract, "police_persons")}
    early = dt.date(births[off["person_key"]] - 1, 6, 1)
    _edit(extract, "police_offences", off_i, offence_date=early.isoformat(),
          recorded_date=early.isoformat())
    # an outcome dated before its offence is still caught by the date order
    con = duckdb.connect()
    result = run_all(con, extract)
    assert result.error is None, result.error
    hits = {r[0]: r[1] for r in con.execute(
        "SELECT rule_id, list(line) FROM quarantine.rows GROUP BY 1").fetchall()}
    assert off_i + 2 in hits["police_offences.offence_date.not_before_birth_year"]
    assert ses_i + 2 in hits["clinic_sessions.session_date.not_after_date_of_death"]
    later_offences = [i + 2 for i, o in enumerate(offences)
                      if o["person_key"] == ref["person_key"]
                      and dt.date.fromisoformat(o["offence_date"]) > death]
    assert set(later_offences) <= set(hits.get(
        "police_offences.offence_date.not_after_date_of_death", []))


def test_outcome_before_offence_and_session_before_referral_are_quarantined(extract):
    offences = _rows(extract, "police_offences")
    off_i, off = next((i, o) for i, o in enumerate(offences) if o["outcome_date"])
    before = dt.date.fromisoformat(off["offence_date"]) - dt.timedelta(days=3)
    _edit(extract, "police_offences", off_i, outcome_date=before.isoformat())
    refs = {r["referral_key"]: r for r in _rows(extract, "clinic_referrals")}
    sessions = _rows(extract, "clinic_sessions")
    ses_i, ses = 0, sessions[0]
    early = dt.date.fromisoformat(refs[ses["referral_key"]]["referral_date"]) - dt.timedelta(1)
    _edit(extract, "clinic_sessions", ses_i, session_date=early.isoformat())
    con = duckdb.connect()
    assert run_all(con, extract).error is None
    rules = {r[0]: r[1] for r in con.execute(
        "SELECT rule_id, list(line) FROM quarantine.rows GROUP BY 1").fetchall()}
    assert off_i + 2 in rules["police_offences.outcome_date.not_before_recorded_date"]
    assert ses_i + 2 in rules["clinic_sessions.session_date.within_parent"]


def test_a_manifest_that_is_not_utf8_leaves_the_folder_incomplete(tmp_path):
    """The sensor scans every folder: one undecodable manifest must not stop the scan."""
    from pipeline.ingest.manifest import is_complete

    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe{\x00}\x00")
    assert is_complete(tmp_path) is False
