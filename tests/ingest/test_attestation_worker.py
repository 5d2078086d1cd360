"""The Great Expectations child process: the same results as attesting in the run's process,
no lock or file inherited, and a dead child falls back to the run's process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest import attestation_worker
from pipeline.ingest.attestation import attest_staged
from pipeline.run_lock import WarehouseLock
from tests.ingest.conftest import run_all


@pytest.fixture(scope="module")
def staged(clean_extract, tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    folder = Path(shutil.copytree(clean_extract, root / "landing" / clean_extract.name))
    con = duckdb.connect(str(root / "w.duckdb"))
    assert run_all(con, folder).error is None
    # one planted row that quarantine would have stopped: a failing expectation to compare
    con.execute("UPDATE staging.clinic_sessions SET session_date = DATE '1999-01-01' "
                "WHERE _line = (SELECT min(_line) FROM staging.clinic_sessions)")
    yield con, clean_extract.name
    con.close()
    attestation_worker.stop()


def test_the_child_gives_the_results_of_the_run_process(staged):
    con, eid = staged
    attestation_worker.stop()
    here = {t: attest_staged(con, eid, load_contract(t)) for t in EXTRACT_TABLES}
    attestation_worker.prestart()
    child = attestation_worker._worker
    there = {t: attest_staged(con, eid, load_contract(t)) for t in EXTRACT_TABLES[:-1]}
    assert attestation_worker._worker is child and attestation_worker.running()  # it was used
    assert attestation_worker._attested == set(EXTRACT_TABLES[:-1])
    last = EXTRACT_TABLES[-1]
    there[last] = attest_staged(con, eid, load_contract(last))
    # every table attested: the child has ended, freeing its memory for the analysis
    assert child.poll() is not None and not attestation_worker.running()
    assert here == there
    assert {r.rule for r in there["clinic_sessions"].failed} == {
        "clinic_sessions.session_date.within_parent"}
    assert all(there[t].success for t in EXTRACT_TABLES if t != "clinic_sessions")


def test_a_dead_child_falls_back_to_the_run_process(staged):
    con, eid = staged
    attestation_worker.prestart()
    attestation_worker._worker.kill()
    attestation_worker._worker.wait()
    att = attest_staged(con, eid, load_contract("police_persons"))
    assert att.success and att.rows_checked == att.rows_staged > 0
    assert not attestation_worker.running()


def test_the_child_holds_no_lock_or_file_of_the_run(tmp_path):
    attestation_worker.stop()
    warehouse = tmp_path / "warehouse.duckdb"
    with WarehouseLock(warehouse, run_id="r", extract_id="e"):
        con = duckdb.connect(str(warehouse))
        attestation_worker.prestart()
        pid = attestation_worker._worker.pid
        targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        con.close()
    attestation_worker.stop()
    assert not any(str(tmp_path) in t for t in targets), targets
    assert not any("lock" in t or t.endswith(".duckdb") for t in targets), targets


def test_stop_ends_the_child():
    attestation_worker.prestart()
    worker = attestation_worker._worker
    attestation_worker.stop()
    assert worker.poll() is not None and not attestation_worker.running()


def test_runs_start_the_child_only_when_they_attest():
    import dagster as dg

    from assets.ingest import EXPECTATIONS_CHECK, attests

    staged = dg.AssetKey("staged_police_persons")
    raw = dg.AssetKey("raw_police_persons")

    def run(assets=None, checks=None):
        return dg.DagsterRun(job_name="j", asset_selection=assets, asset_check_selection=checks)

    assert attests(run())  # the whole job
    assert attests(run(set()))  # a job's own run (execute_in_process, the UI's job launch)
    assert attests(run({raw, staged}))
    assert not attests(run({raw}))
    assert attests(run({raw, staged}, {dg.AssetCheckKey(staged, EXPECTATIONS_CHECK)}))
    assert not attests(run({raw, staged}, {dg.AssetCheckKey(staged, "rows_reconcile")}))
    assert not attests(run({raw, staged}, set()))
