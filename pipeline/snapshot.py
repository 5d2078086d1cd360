"""The research snapshot: what researchers read, published once per successful run.

DuckDB allows one writing process per database file, and a process holding the warehouse open
(even read-only) makes the next run's writer wait and fail. So researchers never open the
warehouse: after each successful run the ``research_snapshot`` asset copies every
``analysis.*`` table's rows of the extract into a folder of Parquet files that the pipeline
never writes to again::

    <snapshots>/<extract_id>/<version>/   <table>.parquet per analysis table, evaluation.yaml
                                          (the configuration of the run), manifest.json
    <snapshots>/<extract_id>/CURRENT      name of the newest version of that extract
    <snapshots>/LATEST                    "<extract_id>/<version>" of the newest publication

A version is written to a hidden temporary folder and renamed into place; the pointer files
are replaced atomically, so a reader sees either the previous or the new snapshot, never half
of one. ``connect_snapshot`` opens a snapshot as an in-memory DuckDB database whose
``analysis.*`` views read the Parquet files: the pipeline's own SQL and frame builders then run
on it unchanged, and no lock on the warehouse is ever taken. ``<snapshots>`` is
``STALKING_EVAL_SNAPSHOTS`` or the folder ``snapshots`` next to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.extract_format import check_extract_id

SCHEMA = "analysis"
MANIFEST = "manifest.json"
CONFIG_COPY = "evaluation.yaml"
LATEST = "LATEST"
CURRENT = "CURRENT"


class SnapshotError(RuntimeError):
    """No snapshot where one was asked for; the message says how to publish one."""


@dataclass(frozen=True)
class PublishedSnapshot:
    """Where a publication went and what it holds (table name -> rows)."""

    extract_id: str
    version: str
    folder: Path
    tables: dict[str, int]


def snapshot_root(warehouse: Path) -> Path:
    """The snapshots folder: ``STALKING_EVAL_SNAPSHOTS`` or ``snapshots`` beside the warehouse."""
    override = os.environ.get("STALKING_EVAL_SNAPSHOTS")
    return Path(override) if override else Path(warehouse).parent / "snapshots"


def analysis_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names (without schema) of the warehouse's analysis tables, sorted."""
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                       "AND table_type = 'BASE TABLE' ORDER BY table_name", [SCHEMA]).fetchall()
    return [r[0] for r in rows]


def _quote_path(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def _write_pointer(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _extraction_date(con: duckdb.DuckDBPyConnection, extract_id: str) -> str | None:
    try:
        row = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                          [extract_id]).fetchone()
    except duckdb.CatalogException:
        return None
    return str(row[0]) if row else None


def publish_snapshot(con: duckdb.DuckDBPyConnection, extract_id: str, root: Path, *,
                     config_file: Path | None = None,
                     now: dt.datetime | None = None) -> PublishedSnapshot:
    """Copy one extract's rows of every ``analysis.*`` table into a new snapshot version.

    Parameters
    ----------
    con: a connection to the warehouse (the run's own writer connection is fine).
    extract_id: the extract whose rows are published (a valid extract id).
    root: the snapshots folder (see ``snapshot_root``).
    config_file: the run's evaluation configuration, copied into the snapshot so that a
        re-fit uses exactly the settings of the run.
    now: the publication time (default: the current UTC time); names the version.

    Returns
    -------
    PublishedSnapshot: extract id, version, folder and the row count of each table.

    Example
    -------
    >>> publish_snapshot(con, "synthetic-2026-10-s42", Path("data/snapshots"))  # doctest: +SKIP
    """
    check_extract_id(extract_id)
    now = now or dt.datetime.now(dt.UTC)
    version = now.strftime("%Y%m%dT%H%M%S%fZ")
    parent = Path(root) / extract_id
    parent.mkdir(parents=True, exist_ok=True)
    final, tmp = parent / version, parent / f".{version}.tmp"
    if final.exists():
        raise SnapshotError(f"snapshot version {version} exists already; publish again")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        tables = {}
        for table in analysis_tables(con):
            target = tmp / f"{table}.parquet"
            con.execute(f"COPY (SELECT * FROM {SCHEMA}.{table} WHERE extract_id = "
                        f"'{extract_id}') TO '{_quote_path(target)}' (FORMAT parquet)")
            tables[table] = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table} "
                                        "WHERE extract_id = ?", [extract_id]).fetchone()[0]
        if config_file is not None:
            shutil.copyfile(config_file, tmp / CONFIG_COPY)
        manifest = {"extract_id": extract_id, "version": version,
                    "published_at": now.isoformat(timespec="seconds"),
                    "extraction_date": _extraction_date(con, extract_id),
                    "tables": tables, "config": CONFIG_COPY if config_file else None}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o444)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_pointer(parent / CURRENT, version)
    _write_pointer(Path(root) / LATEST, f"{extract_id}/{version}")
    return PublishedSnapshot(extract_id, version, final, tables)


def snapshot_folder(root: Path, extract_id: str | None = None) -> Path:
    """The folder of the newest snapshot of ``extract_id`` (default: the newest publication).

    Raises ``SnapshotError`` when nothing has been published there yet.
    """
    root = Path(root)
    pointer = root / LATEST if extract_id is None else root / check_extract_id(extract_id) \
        / CURRENT
    if not pointer.is_file():
        what = "any extract" if extract_id is None else "this extract"
        raise SnapshotError(f"no research snapshot of {what} under {root}: a successful run "
                            "publishes one (asset research_snapshot)")
    name = pointer.read_text(encoding="utf-8").strip()
    folder = root / name if extract_id is None else root / extract_id / name
    if not (folder / MANIFEST).is_file():
        raise SnapshotError(f"snapshot pointer {pointer} names a missing folder; publish again")
    return folder


def read_manifest(folder: Path) -> dict:
    """The manifest of a snapshot folder (extract id, version, tables and row counts)."""
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def connect_snapshot(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one ``analysis.<table>`` view per Parquet file.

    The views read the snapshot's files on every query; nothing here touches the warehouse,
    so a run can write to it while this connection is open.
    """
    con = duckdb.connect()
    try:  # no progress bar text in scripts' output (in Jupyter DuckDB may refuse the switch)
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    for table in read_manifest(folder)["tables"]:
        path = _quote_path(Path(folder) / f"{table}.parquet")
        con.execute(f"CREATE VIEW {SCHEMA}.{table} AS SELECT * FROM read_parquet('{path}')")
    return con
