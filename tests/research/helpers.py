"""Publishing the session's end-to-end warehouse as a research snapshot, for the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from pipeline.snapshot import PublishedSnapshot, publish_snapshot


def copy_warehouse(e2e: dict, folder: Path) -> Path:
    """A private copy of the session warehouse (tests that write never touch the shared one)."""
    src = Path(e2e["settings"].warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / src.name)
    return folder / src.name


def publish_e2e(e2e: dict, root: Path, warehouse: Path | None = None) -> PublishedSnapshot:
    """Publish the e2e extract's analysis tables under ``root`` (read-only connection)."""
    con = duckdb.connect(str(warehouse or e2e["settings"].warehouse), read_only=True)
    try:
        return publish_snapshot(con, e2e["extract_id"], root,
                                config_file=e2e["settings"].config_file)
    finally:
        con.close()
