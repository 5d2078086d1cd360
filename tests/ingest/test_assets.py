"""The ingest assets and their blocking checks run through Dagster on small extracts."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

import assets.ingest as ingest_assets
from assets.common import ProjectPaths
from pipeline.contracts.schema import EXTRACT_TABLES
from pipeline.settings import PROJECT_ROOT
from pipeline.synth.faults import apply_fault
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams

CONFIG = PROJECT_ROOT / "config" / "evaluation.yaml"
ALL_ASSETS = dg.load_assets_from_modules([ingest_assets])
ALL_CHECKS = dg.load_asset_checks_from_modules([ingest_assets])


def _run(root, extract_id, selection=None):
    resources = {"duckdb": DuckDBResource(database=str(root / "w.duckdb")),
                 "paths": ProjectPaths(landing_dir=str(root / "landing"),
                                       reports_dir=str(root / "reports"),
                                       config_file=str(CONFIG))}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("extract", [extract_id])
        return dg.materialize([*ALL_ASSETS, *ALL_CHECKS], instance=instance,
                              partition_key=extract_id, resources=resources,
                              selection=selection, raise_on_error=False)


@pytest.fixture()
def small(tmp_path):
    params = SynthParams(n_people=300, seed=21, extraction_date=dt.date(2026, 10, 31))
    folder = write_extract(generate(params), tmp_path / "landing", tmp_path / "truth")
    return tmp_path, folder


def test_definitions_expose_the_agreed_asset_names():
    keys = {k.to_user_string() for a in ALL_ASSETS for k in a.keys}
    assert keys == {*(f"{p}_{t}" for p in ("raw", "staged") for t in EXTRACT_TABLES),
                    "data_quality_report"}
    checks = {(k.asset_key.to_user_string(), k.name) for c in ALL_CHECKS for k in c.check_keys}
    for t in EXTRACT_TABLES:
        assert (f"staged_{t}", "rows_reconcile") in checks
        assert (f"staged_{t}", "contract_expectations") in checks
    assert ("staged_clinic_sessions", "references_resolve") in checks


def test_clean_extract_materialises_with_every_check_passing(small):
    root, folder = small
    result = _run(root, folder.name)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len([k for c in ALL_CHECKS for k in c.check_keys])
    assert all(e.passed for e in evaluations)
    report = root / "reports" / folder.name
    assert (report / "data_quality.html").exists() and (report / "quarantined_rows.csv").exists()
    meta = result.asset_materializations_for_node("data_quality_report")[0].metadata
    assert meta["quarantined"].value == 0 and meta["linkage_rate"].value == 1.0


def test_blocked_table_fails_its_asset_and_writes_the_report(small):
    root, folder = small
    apply_fault(folder, "quarantine_share")
    selection = [f"raw_{t}" for t in ("police_persons", "police_offences")] + [
        "staged_police_persons", "staged_police_offences"]
    result = _run(root, folder.name, selection=selection)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["staged_police_offences"]
    message = failures[0].event_specific_data.error.message
    assert "above the 5% limit" in message and "data-quality report" in message
    assert (root / "reports" / folder.name / "data_quality.html").exists()
