"""Dagster's own storage on Postgres (docs/scaling.md): config/dagster_postgres.yaml, copied as
$DAGSTER_HOME/dagster.yaml, keeps a real run of the evaluation job (its run record, event log,
asset materialisations and the extract partition) in a real Postgres server, and a second
instance opened from the same DAGSTER_HOME reads them back.

The server is a throwaway one started here (initdb, pg_ctl: trust auth, a free port on
127.0.0.1, its unix socket in the server's own temporary folder) and stopped, its folder
removed, by finalizers. initdb and postgres refuse to run as root: when the tests run as root
(as CI does here), the server runs as an existing unprivileged user (``postgres``, else
``nobody``) through ``subprocess``'s ``user=``, in a folder that user owns (pytest's tmp_path
under /tmp/pytest-of-root is 0700, out of that user's reach). The test is skipped only when the
PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "config" / "dagster_postgres.yaml"
PG_USER = "postgres"  # the database superuser initdb creates (trust auth: no password checked)


def _pg_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root and no unprivileged user (postgres, nobody) exists to run "
                "initdb/postgres, which refuse to run as root")


@pytest.fixture()
def postgres_server(request) -> dict:
    """A throwaway Postgres server; connection settings as the DAGSTER_PG_* variables want."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")
    # a short folder of its own: the unix socket path must stay under 107 bytes, and when run
    # as root the server's user must be able to reach it (pytest's tmp_path is root-only)
    base = Path(tempfile.mkdtemp(prefix="pytest-postgres-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    run_as: dict = {}
    if os.geteuid() == 0:
        user = _unprivileged_user()
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, log = base / "data", base / "server.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(base)}

    def pg(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=base, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              **run_as)

    def stop() -> None:
        pg("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w", timeout=30)

    init = pg("initdb", "-D", str(data), "-U", PG_USER, "--auth=trust", "--no-sync",
              "--locale=C", "--encoding=UTF8")
    assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
    port = _free_port()
    options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    request.addfinalizer(stop)
    start = pg("pg_ctl", "start", "-D", str(data), "-l", str(log), "-w", "-t", "30",
               "-o", options)
    assert start.returncode == 0, (f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n"
                                   f"{log.read_text() if log.exists() else ''}")
    return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_DB": "postgres", "DAGSTER_PG_USERNAME": PG_USER,
            "DAGSTER_PG_PASSWORD": "unused-with-trust-auth"}


def _query(server: dict, sql: str, *params) -> list[tuple]:
    import psycopg2

    con = psycopg2.connect(host=server["DAGSTER_PG_HOST"], port=int(server["DAGSTER_PG_PORT"]),
                           dbname=server["DAGSTER_PG_DB"], user=server["DAGSTER_PG_USERNAME"])
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def test_template_reads_every_connection_setting_from_the_environment():
    import yaml

    db = yaml.safe_load(TEMPLATE.read_text())["storage"]["postgres"]["postgres_db"]
    assert db == {"scheme": "postgresql+psycopg2",
                  "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"},
                  "db_name": {"env": "DAGSTER_PG_DB"},
                  "username": {"env": "DAGSTER_PG_USERNAME"},
                  "password": {"env": "DAGSTER_PG_PASSWORD"}}


@pytest.mark.slow
def test_a_run_is_stored_in_postgres_and_seen_by_a_second_instance(postgres_server, tmp_path,
                                                                   monkeypatch):
    """The four raw_* assets of the evaluation job (the landing CSVs loaded into DuckDB) for a
    300-person extract: the cheapest real run, about 4 s of CPU (the whole job on Postgres
    storage is the same storage code, several times longer)."""
    import dagster as dg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from pipeline.definitions import EXTRACTS, build_definitions, evaluate_extract
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams
    from tests.conftest import make_settings

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(TEMPLATE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in postgres_server.items():
        monkeypatch.setenv(name, value)

    settings = make_settings(tmp_path / "data")
    params = SynthParams(n_people=300, seed=5, extraction_date=dt.date(2026, 10, 31))
    write_extract(generate(params), settings.landing_dir, settings.truth_dir)
    job = build_definitions(settings).resolve_job_def(evaluate_extract.name)
    raw = {key for key in job.asset_layer.executable_asset_keys
           if key.path[-1].startswith("raw_")}
    assert len(raw) == 4  # one per landing file

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:  # what `python -m pipeline run` opens
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        instance.add_dynamic_partitions(EXTRACTS.name, [params.extract_id])
        result = job.execute_in_process(partition_key=params.extract_id, instance=instance,
                                        asset_selection=sorted(raw))
    elapsed = time.perf_counter() - started
    assert result.success
    run_id = result.run_id

    # the rows are in Postgres ...
    assert _query(postgres_server, "SELECT status FROM runs WHERE run_id = %s",
                  run_id) == [("SUCCESS",)]
    kinds = dict(_query(postgres_server, "SELECT dagster_event_type, count(*) FROM event_logs "
                        "WHERE run_id = %s GROUP BY dagster_event_type", run_id))
    events = dg.DagsterEventType
    assert {events.RUN_START.value, events.RUN_SUCCESS.value} <= kinds.keys()
    assert kinds[events.STEP_SUCCESS.value] == len(raw)
    stored = _query(postgres_server, "SELECT asset_key, partition FROM event_logs WHERE "
                    "run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'", run_id)
    assert sorted(stored) == sorted((key.to_string(), params.extract_id) for key in raw)
    assert _query(postgres_server, "SELECT partition FROM dynamic_partitions WHERE "
                  "partitions_def_name = %s", EXTRACTS.name) == [(params.extract_id,)]
    # ... and nothing fell back to the default SQLite storage under DAGSTER_HOME
    assert not list(home.rglob("*.db")), sorted(p.name for p in home.rglob("*.db"))

    # a second instance, opened from the same DAGSTER_HOME as another process would, reads it
    with dg.DagsterInstance.from_config(str(home)) as second:
        run = second.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == params.extract_id
        assert second.get_dynamic_partitions(EXTRACTS.name) == [params.extract_id]
        for key in raw:
            latest = second.get_latest_materialization_event(key)
            assert latest is not None and latest.run_id == run_id, key
        assert len(second.all_logs(run_id)) == sum(kinds.values())
    print(f"raw_* run on Postgres storage: {elapsed:.1f} s")
