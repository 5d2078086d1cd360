"""The contracts drive everything: parsing, strict typing, generated rules, the GE suite and the
provider specification all come from ``data_contracts/*.yaml`` and stay in step."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import sys

import duckdb
import pytest
import yaml

from pipeline.contracts.expectations import build_suite, expectation_specs
from pipeline.contracts.rules import cast_text, check_plan
from pipeline.contracts.schema import (
    CONTRACTS_DIR,
    EXTRACT_TABLES,
    ColumnSpec,
    ContractError,
    load_contract,
    load_contracts,
    load_offence_codes,
    load_rulebook,
)
from pipeline.contracts.specification import SPEC_PATH, render
from pipeline.settings import PROJECT_ROOT

XDATE = dt.date(2026, 10, 31)


def test_contracts_and_rules_parse():
    contracts = load_contracts()
    assert list(contracts) == list(EXTRACT_TABLES)
    book = load_rulebook()
    assert book.date_order and book.conditional and book.within_parent and book.code_validity
    keys = {c.name for t in contracts.values() for c in t.columns if c.pseudonymised}
    assert keys == {"person_key", "victim_key"}
    codes = {c.code: c.valid_from for c in load_offence_codes()}
    assert codes["S2A"] == dt.date(2012, 11, 25) and codes["SPOB"] == dt.date(2020, 1, 20)


def test_malformed_contract_is_a_developer_error(tmp_path):
    shutil.copytree(CONTRACTS_DIR, tmp_path / "c")
    path = tmp_path / "c" / "police_persons.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["columns"][1]["typo_key"] = True
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError, match="unknown keys"):
        load_contract("police_persons", tmp_path / "c")
    rules = tmp_path / "c" / "rules.yaml"
    raw = yaml.safe_load(rules.read_text())
    raw["date_order"][0]["columns"].append("no_such_column")
    rules.write_text(yaml.safe_dump(raw))
    (tmp_path / "c" / "police_persons.yaml").write_text(
        (CONTRACTS_DIR / "police_persons.yaml").read_text())
    with pytest.raises(ContractError, match="no_such_column"):
        load_rulebook(tmp_path / "c")


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("INTEGER", "1985", 1985), ("INTEGER", "1985.0", None), ("INTEGER", "1985.4", None),
    ("INTEGER", "1e3", None), ("INTEGER", "0x10", None), ("INTEGER", "1_000", None),
    ("DATE", "2020-01-05", dt.date(2020, 1, 5)), ("DATE", "2020-1-5", None),
    ("DATE", "2020/01/05", None), ("DATE", "05/01/2020", None), ("DATE", "2020-02-30", None),
    ("DATE", "2020-01-05 10:00", None), ("BOOLEAN", "TRUE", True), ("BOOLEAN", "yes", None),
])
def test_typing_is_strict(kind, text, expected):
    sql = cast_text(ColumnSpec("c", kind), "$v")
    assert duckdb.execute(f"SELECT {sql}", {"v": text}).fetchone()[0] == expected


def test_rule_ids_are_unique_and_reasons_fixed():
    for table in EXTRACT_TABLES:
        rules = check_plan(load_contract(table)).rules
        ids = [r.rule_id for r in rules]
        assert len(ids) == len(set(ids))
        assert all(r.rule_id.startswith(f"{table}.{r.column}.") for r in rules)
        # reasons are fixed texts for people: no SQL, no parameters
        assert not any(x in r.reason for r in rules for x in ("$eid", "$xdate", "SELECT",
                                                               "CASE", "regexp"))


def test_cross_table_rules_from_the_issue_exist():
    ids = {r.rule_id for t in EXTRACT_TABLES for r in check_plan(load_contract(t)).rules}
    assert {
        "police_offences.person_key.references", "clinic_referrals.person_key.references",
        "clinic_sessions.referral_key.references",
        "police_offences.recorded_date.not_before_offence_date",
        "police_offences.outcome_date.not_before_recorded_date",
        "clinic_referrals.decision_date.not_before_referral_date",
        "clinic_referrals.discharge_date.not_before_decision_date",
        "clinic_sessions.session_date.within_parent",
        "police_offences.offence_date.not_after_extraction",
        "police_persons.birth_year.plausible",
        "police_offences.offence_code.valid_on_offence_date",
    } <= ids


def test_specification_is_generated_and_in_step():
    text = render()
    assert SPEC_PATH.read_text() == text, "run python -m pipeline.contracts.specification"
    for table in EXTRACT_TABLES:
        contract = load_contract(table)
        assert f"## {contract.file}" in text
        for rule in check_plan(contract).rules:
            assert f"`{rule.rule_id}`" in text
        for col in contract.columns:
            assert f"| `{col.name}` |" in text
    assert "| `SPOB` |" in text and "2020-01-20" in text


def test_spec_check_command_detects_drift(tmp_path):
    from pipeline.contracts.specification import main

    out = tmp_path / "spec.md"
    assert main(["--out", str(out)]) == 0
    assert main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert main(["--check", "--out", str(out)]) == 1


# rule kinds the staged-table suite does not restate: typing is enforced by the staging column
# types, and references are checked in SQL by the references_resolve asset check
NOT_IN_SUITE = (".type", ".references", ".parent_quarantined")


def test_expectation_suite_covers_the_rules():
    for table in EXTRACT_TABLES:
        contract = load_contract(table)
        specs = expectation_specs(contract, XDATE)
        attested = {s.rule for s in specs} | {rule for s in specs for rule in s.implies}
        rules = {r.rule_id for r in check_plan(contract).rules
                 if not r.rule_id.endswith(NOT_IN_SUITE)
                 and not (r.rule_id.endswith(".quote") and contract.column(r.column).type
                          != "VARCHAR")}
        assert rules <= attested, rules - attested


def test_a_set_check_stands_for_the_text_checks_only_where_every_listed_value_passes_them():
    contract = load_contract("police_persons")
    specs = {s.rule: s for s in expectation_specs(contract, XDATE)}
    assert specs["police_persons.sex.allowed"].implies == (
        "police_persons.sex.length", "police_persons.sex.formula", "police_persons.sex.quote")
    assert "police_persons.sex.quote" not in specs
    assert "police_persons.person_key.quote" in specs  # a pattern column keeps its own
    # a listed value that starts like a formula or is over the length: those checks stay
    odd = dataclasses.replace(contract.column("sex"), allowed=("=M", "F"), max_length=1)
    altered = dataclasses.replace(contract, columns=tuple(
        odd if c.name == "sex" else c for c in contract.columns))
    specs = {s.rule: s for s in expectation_specs(altered, XDATE)}
    assert specs["police_persons.sex.allowed"].implies == ("police_persons.sex.quote",)
    assert {"police_persons.sex.length", "police_persons.sex.formula"} <= set(specs)


def test_suite_is_built_from_the_yaml():
    contract = load_contract("police_offences")
    suite = build_suite(contract, XDATE)
    specs = expectation_specs(contract, XDATE)
    assert len(suite.expectations) == len(specs)
    rules = {e.meta["rule"] for e in suite.expectations}
    assert "police_offences.outcome_date.required_when" in rules
    allowed = next(e for e in suite.expectations
                   if e.meta["rule"] == "police_offences.outcome.allowed")
    assert list(allowed.value_set) == list(contract.column("outcome").allowed)


def test_a_suite_that_drops_an_expectation_is_refused(monkeypatch):
    """GE's suite constructor logs and skips an expectation it cannot take; build_suite must
    refuse rather than attest with fewer expectations than the contract generates."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.exceptions import InvalidExpectationConfigurationError

    real = ExpectationSuite._process_expectation

    def drop_ranges(self, expectation):
        if type(expectation).__name__ == "ExpectColumnValuesToBeBetween":
            raise InvalidExpectationConfigurationError("refused")
        return real(self, expectation)

    monkeypatch.setattr(ExpectationSuite, "_process_expectation", drop_ranges)
    with pytest.raises(RuntimeError, match="police_offences suite kept .* of .* expectations"):
        build_suite(load_contract("police_offences"), XDATE)


def test_modules_import_without_great_expectations():
    code = ("import sys; import pipeline.ingest.load, pipeline.ingest.quality_report, "
            "pipeline.contracts.expectations, pipeline.ingest.attestation, assets.ingest; "
            "sys.exit(1 if 'great_expectations' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT).returncode == 0
