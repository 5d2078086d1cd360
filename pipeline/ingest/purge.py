"""Remove every trace of one extract: warehouse rows, reports, Dagster partition and runs.

Used when an extract must not stay (it carried something it should not, or a provider sends a
corrected delivery under the same extract id). The warehouse is rewritten afterwards so that
deleted rows do not survive in free blocks of the DuckDB file. Nothing here reads or prints a
delivered value: only table names and row counts.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.contracts.rules import ident
from pipeline.extract_format import check_extract_id, inside

EXTRACT_COLUMNS = ("extract_id", "_extract_id")


@dataclass
class PurgeResult:
    """What a purge removed (counts and names only)."""

    rows: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    reports_removed: bool = False
    runs_deleted: int = 0
    partition_removed: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def extract_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(qualified table, extract column) for every warehouse table keyed by extract."""
    found = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND NOT internal "
        f"AND column_name IN {EXTRACT_COLUMNS} ORDER BY 1, 2").fetchall()
    return [(f"{ident(s)}.{ident(t)}", c) for s, t, c in found]


def purge_rows(con: duckdb.DuckDBPyConnection, extract_id: str) -> dict[str, int]:
    """Delete the extract's rows from every schema in one transaction; return counts."""
    check_extract_id(extract_id)
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, column in extract_tables(con):
            n = con.execute(f"SELECT count(*) FROM {table} WHERE {ident(column)} = ?",
                            [extract_id]).fetchone()[0]
            if n:
                con.execute(f"DELETE FROM {table} WHERE {ident(column)} = ?", [extract_id])
                counts[table.replace('"', "")] = int(n)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def compact(warehouse: Path) -> None:
    """Rewrite the DuckDB file so that deleted rows leave no bytes behind in free blocks."""
    warehouse = Path(warehouse)
    fresh = warehouse.with_name(warehouse.name + ".purge-tmp")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        name = con.execute("SELECT current_database()").fetchone()[0]
        con.execute(f"ATTACH {_literal(fresh)} AS purge_fresh")
        con.execute(f"COPY FROM DATABASE {ident(name)} TO purge_fresh")
        con.execute("DETACH purge_fresh")
    finally:
        con.close()
    os.replace(fresh, warehouse)
    Path(str(warehouse) + ".wal").unlink(missing_ok=True)


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def purge_warehouse(warehouse: Path, extract_id: str) -> dict[str, int]:
    """Delete the extract from the warehouse file and compact it; return rows per table."""
    if not Path(warehouse).exists():
        return {}
    con = duckdb.connect(str(warehouse))
    try:
        counts = purge_rows(con, extract_id)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    compact(warehouse)
    return counts


def purge_reports(reports_dir: Path, extract_id: str) -> bool:
    """Remove the extract's reports folder (resolved inside ``reports_dir``); True if it was."""
    folder = inside(reports_dir, check_extract_id(extract_id), "reports folder")
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def purge_snapshots(snapshots_dir: Path, extract_id: str) -> bool:
    """Remove the extract's research snapshots (published read-only) and the ``LATEST``
    pointer if it names them; True if there were any."""
    import os
    import stat

    def writable(func, path, _exc) -> None:  # the snapshot folders are made read-only
        os.chmod(Path(path).parent, stat.S_IRWXU)
        os.chmod(path, stat.S_IRWXU)
        func(path)

    folder = inside(snapshots_dir, check_extract_id(extract_id), "snapshots folder")
    latest = Path(snapshots_dir) / "LATEST"
    if latest.is_file() and latest.read_text().strip().split("/")[0] == extract_id:
        latest.unlink()
    if not folder.exists():
        return False
    shutil.rmtree(folder, onerror=writable)
    return True


def purge_dagster(instance, partitions_name: str, extract_id: str) -> tuple[int, bool]:
    """Delete the extract's runs, asset history and dynamic partition from a Dagster instance.

    Returns (runs deleted, partition removed).
    """
    import dagster as dg

    check_extract_id(extract_id)
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": extract_id}))
    storage = Path(instance.root_directory) / "storage" if instance.root_directory else None
    _clear_asset_index(instance, [r.dagster_run.run_id for r in records], extract_id)
    for record in records:
        run_id = record.dagster_run.run_id
        instance.delete_run(run_id)
        if storage is not None and (storage / run_id).is_dir():  # captured compute logs
            shutil.rmtree(inside(storage, run_id, "run folder"))
        shard = (Path(instance.root_directory) / "history" / "runs" / f"{run_id}.db"
                 if instance.root_directory else None)
        if shard is not None and shard.is_file():  # SQLite's per-run event log, now empty
            inside(shard.parent, shard.name, "run event log").unlink()
    try:  # the asset index too, where the storage supports it (SQLite does not; then
        # ``_clear_asset_index`` has already done it)
        for key in instance.all_asset_keys():
            instance.wipe_asset_partitions(key, [extract_id])
    except NotImplementedError:
        pass
    had = instance.has_dynamic_partition(partitions_name, extract_id)
    if had:
        instance.delete_dynamic_partition(partitions_name, extract_id)
    return len(records), had


def _clear_asset_index(instance, run_ids: list[str], extract_id: str) -> None:
    """Remove the extract's asset-check executions and the cached latest materialisations
    that point at its runs from a SQL event log (``delete_run`` leaves both behind)."""
    import sqlalchemy as sa
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable

    storage = instance.event_log_storage
    if not hasattr(storage, "index_connection"):
        return
    checks, keys = AssetCheckExecutionsTable, AssetKeyTable
    with storage.index_connection() as conn:
        conn.execute(sa.delete(checks).where(
            sa.or_(checks.c.partition == extract_id, checks.c.run_id.in_(run_ids))))
        if run_ids:
            conn.execute(sa.update(keys).where(keys.c.last_run_id.in_(run_ids)).values(
                last_materialization=None, last_run_id=None, cached_status_data=None))
        conn.execute(sa.update(keys).values(cached_status_data=None))  # recomputed on demand
