"""``python -m pipeline purge EXTRACT_ID``: every row, the reports and the Dagster history of
an extract go, after a confirmation; a corrected delivery under the same id then loads."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb

from pipeline.cli import _instance, main
from pipeline.extract_format import sha256_file
from pipeline.ingest.purge import extract_tables
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings
from tests.ingest.conftest import run_all


def _rows_of(warehouse, extract_id) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sum(con.execute(f"SELECT count(*) FROM {t} WHERE \"{c}\" = ?",
                               [extract_id]).fetchone()[0] for t, c in extract_tables(con))
    finally:
        con.close()


@dg.op
def _noop() -> None:
    return None


@dg.job
def _tagged_job() -> None:
    _noop()


def _correct(folder):
    """A corrected file: one session's attendance flipped, manifest re-hashed."""
    path = folder / "clinic_sessions.csv"
    lines = path.read_text().splitlines()
    lines[1] = (lines[1][:-4] + "false" if lines[1].endswith("true")
                else lines[1][:-5] + "true")
    path.write_text("\n".join(lines) + "\n")
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["clinic_sessions.csv"]["sha256"] = sha256_file(path)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_purge_removes_everything_and_a_corrected_delivery_loads(tmp_path, monkeypatch,
                                                                 capsys):
    settings = make_settings(tmp_path)
    monkeypatch.setenv("STALKING_EVAL_DATA", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    params = SynthParams(n_people=300, seed=4, extraction_date=dt.date(2026, 10, 31))
    folder = write_extract(generate(params), settings.landing_dir, settings.truth_dir)
    eid = folder.name
    other = write_extract(generate(SynthParams(n_people=200, seed=9)), settings.landing_dir,
                          settings.truth_dir)
    con = duckdb.connect(str(settings.warehouse))
    assert run_all(con, folder).error is None
    assert run_all(con, other).error is None
    con.close()
    (settings.reports_dir / eid).mkdir(parents=True)
    (settings.reports_dir / eid / "data_quality.html").write_text("report")
    snap = tmp_path / "snapshots" / eid / "v1"  # a published, read-only research snapshot
    snap.mkdir(parents=True)
    (snap / "units.parquet").write_bytes(b"rows")
    snap.chmod(0o555)
    (tmp_path / "snapshots" / "LATEST").write_text(f"{eid}/v1")
    instance = _instance(settings)
    instance.add_dynamic_partitions("extract", [eid, other.name])
    _tagged_job.execute_in_process(instance=instance, tags={"dagster/partition": eid})
    assert len(instance.get_runs()) == 1
    before = _rows_of(settings.warehouse, eid)
    other_rows = _rows_of(settings.warehouse, other.name)
    assert before > 0 and other_rows > 0

    # a changed file under the accepted id is refused before the purge
    _correct(folder)
    con = duckdb.connect(str(settings.warehouse))
    refused = run_all(con, folder)
    con.close()
    assert refused.error is not None and "new extract id" in str(refused.error)

    # no confirmation: nothing removed
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert main(["purge", eid]) == 1
    assert _rows_of(settings.warehouse, eid) == before

    monkeypatch.setattr("builtins.input", lambda prompt="": eid)
    assert main(["purge", eid]) == 0
    out = capsys.readouterr().out
    assert f"purged {eid}: {before} rows" in out
    assert _rows_of(settings.warehouse, eid) == 0
    assert _rows_of(settings.warehouse, other.name) == other_rows  # others untouched
    assert not (settings.reports_dir / eid).exists()
    assert not (tmp_path / "snapshots" / eid).exists()
    assert not (tmp_path / "snapshots" / "LATEST").exists()
    instance = _instance(settings)
    assert instance.get_dynamic_partitions("extract") == [other.name]
    assert instance.get_runs() == []
    shards = list((tmp_path / "dagster_home" / "history" / "runs").glob("*-*.db"))
    assert shards == []  # the run's own event log file is gone too
    # the corrected delivery under the same id now loads and is accepted
    con = duckdb.connect(str(settings.warehouse))
    again = run_all(con, folder)
    assert again.error is None
    assert con.execute("SELECT count(*) FROM meta.accepted WHERE extract_id = ?",
                       [eid]).fetchone()[0] == 1
    con.close()


def test_purge_refuses_a_bad_extract_id(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STALKING_EVAL_DATA", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["purge", "../reports", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("refused")
    assert not (tmp_path / "dagster_home").exists()
