"""The providers' tools: keyed pseudonyms that link police and clinic data, identifier
stripping, the manifest writer and the in-memory pre-flight check."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re

import duckdb
import pytest

from pipeline.contracts.schema import load_contract
from pipeline.ingest.identifiers import find_identifiers, misfit_sql
from pipeline.provider_tools.cli import main
from pipeline.provider_tools.pseudonymise import (
    ToolError,
    load_key,
    new_key_file,
    pseudonym,
    pseudonymise_file,
)
from pipeline.synth.faults import apply_fault

KEY = bytes(range(32))


def test_pseudonym_is_hmac_sha256_prefix_and_16_upper_hex():
    expected = "PK" + hmac.new(KEY, b"12/1234567A", hashlib.sha256).hexdigest()[:16].upper()
    assert pseudonym(KEY, "12/1234567A", "PK") == expected
    assert pseudonym(KEY, " 12/1234567a ", "PK") == expected  # normalised before hashing
    assert re.fullmatch(load_contract("police_persons").column("person_key").pattern, expected)
    assert pseudonym(KEY, "12/1234567A", "VK") == "VK" + expected[2:]
    assert pseudonym(bytes(32), "12/1234567A", "PK") != expected  # another key, no linkage


def test_keygen_writes_an_owner_only_key_once(tmp_path):
    path = new_key_file(tmp_path / "secret.key")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert len(load_key(path)) == 32
    with pytest.raises(ToolError, match="already exists"):
        new_key_file(path)
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(ToolError, match="at least 32 bytes"):
        load_key(tmp_path / "short.key")


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_pseudonymise_links_the_two_providers_and_strips_identifiers(tmp_path):
    key = tmp_path / "k"
    new_key_file(key)
    police = tmp_path / "police_raw.csv"
    _write(police, ["pnc_id", "surname", "dob", "sex", "ethnicity_group", "site",
                    "date_of_death", "home_address"],
           [["12/1234567A", "Smith", "14/03/1985", "M", "White", "SITE_A", "", "1 High St"],
            ["99/7654321B", "Jones", "02/11/1990", "F", "Asian", "SITE_B", "", "2 Low Rd"]])
    clinic = tmp_path / "clinic_raw.csv"
    _write(clinic, ["referral_key", "client_pnc", "client_name", "referral_date",
                    "referral_source", "decision", "decision_date", "srp_type", "risk_rating",
                    "personality_disorder", "psychosis", "substance_misuse", "discharge_date",
                    "discharge_reason"],
           [["RF00000001", "12/1234567a", "J Smith", "2023-01-05", "police", "declined",
             "2023-01-20", "", "", "", "", "", "", ""]])
    out_p, out_c = tmp_path / "police_persons.csv", tmp_path / "clinic_referrals.csv"
    assert main(["pseudonymise", str(police), str(out_p), "--table", "police_persons",
                 "--key-file", str(key), "--person-id", "pnc_id", "--birth-date", "dob"]) == 0
    res = pseudonymise_file(clinic, out_c, load_contract("clinic_referrals"), load_key(key),
                            {"person_key": "client_pnc"})
    assert res.dropped == ["client_name"] and res.rows == 1
    persons = list(csv.DictReader(open(out_p)))
    referrals = list(csv.DictReader(open(out_c)))
    assert list(persons[0]) == load_contract("police_persons").column_names
    assert persons[0]["birth_year"] == "1985"
    assert referrals[0]["person_key"] == persons[0]["person_key"]  # linkage survives
    text = out_p.read_text() + out_c.read_text()
    for secret in ("Smith", "Jones", "12/1234567", "14/03/1985", "High St", "J Smith"):
        assert secret not in text
    # the output passes the warehouse's identifier guard
    con = duckdb.connect()
    for path, table in ((out_p, "police_persons"), (out_c, "clinic_referrals")):
        contract = load_contract(table)
        con.execute(f"CREATE OR REPLACE TABLE f AS SELECT * FROM read_csv('{path}', "
                    "all_varchar = true)")
        select, where = misfit_sql(contract, contract.column_names)
        con.execute(f"CREATE OR REPLACE TABLE m AS SELECT 2 AS _line, {select} FROM f "
                    f"WHERE {where}")
        assert find_identifiers(con, "m", contract, contract.column_names) == []


def test_pseudonymise_reports_a_missing_column_without_values(tmp_path):
    key = tmp_path / "k"
    new_key_file(key)
    src = tmp_path / "in.csv"
    _write(src, ["pnc_id", "sex"], [["12/1234567A", "M"]])
    with pytest.raises(ToolError, match="'birth_year' is missing") as exc:
        pseudonymise_file(src, tmp_path / "out.csv", load_contract("police_persons"),
                          load_key(key), {"person_key": "pnc_id"})
    assert "12/1234567A" not in str(exc.value)


def test_manifest_and_check_commands(extract, capsys):
    (extract / "manifest.json").unlink()
    assert main(["manifest", str(extract), "--extract-id", extract.name,
                 "--extraction-date", "2026-10-31", "--provider", "police"]) == 0
    assert main(["check", str(extract)]) == 0
    out = capsys.readouterr().out
    assert "police_offences.csv" in out and "BLOCKING" not in out
    apply_fault(extract, "id_email")
    assert main(["check", str(extract)]) == 2  # refused
    out = capsys.readouterr().out
    assert "BLOCKING" in out and "e-mail addresses" in out and "@example.com" not in out


def test_check_exit_code_and_line_numbers_for_quarantined_rows(tmp_path, capsys):
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    params = SynthParams(n_people=200, seed=3)
    write_extract(generate(params), tmp_path / "landing", tmp_path / "truth")
    folder = tmp_path / "landing" / params.extract_id
    lines = (folder / "police_persons.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("sex")] = "Q"  # not an allowed value: quarantined, not blocking
    lines[3] = ",".join(row)
    (folder / "police_persons.csv").write_text("\n".join(lines) + "\n")
    (folder / "manifest.json").unlink()
    assert main(["manifest", str(folder), "--extract-id", params.extract_id,
                 "--extraction-date", params.extraction_date.isoformat()]) == 0
    capsys.readouterr()
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "police_persons.sex.allowed: 1 rows (first lines: 4)" in out
    assert "BLOCKING" not in out


def test_help_shows_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes:" in out and "check delivery/" in out
