"""The research snapshot: atomic, read-only publication that never blocks a run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from pipeline.research import open_snapshot
from pipeline.settings import PROJECT_ROOT
from pipeline.snapshot import (
    CURRENT,
    LATEST,
    SnapshotError,
    analysis_tables,
    snapshot_folder,
)
from pipeline.warehouse_io import write_frame
from tests.research.helpers import copy_warehouse, publish_e2e

READER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.research import open_snapshot
    snap = open_snapshot(root=Path(sys.argv[1]))
    print(len(snap.cohort()), flush=True)
    sys.stdin.readline()              # hold the snapshot open until the test has written
    print(len(snap.estimates()), flush=True)
""")


def test_publication_holds_every_analysis_table_of_the_extract(e2e, e2e_con, published):
    root, out = published
    assert out.folder == snapshot_folder(root) == snapshot_folder(root, e2e["extract_id"])
    assert sorted(out.tables) == analysis_tables(e2e_con)
    for table, rows in out.tables.items():
        n = e2e_con.execute(f"SELECT count(*) FROM analysis.{table} WHERE extract_id = ?",
                            [e2e["extract_id"]]).fetchone()[0]
        assert rows == n, table
        assert (out.folder / f"{table}.parquet").is_file()
    manifest = json.loads((out.folder / "manifest.json").read_text())
    assert manifest["extract_id"] == e2e["extract_id"] and manifest["tables"] == out.tables
    assert all(not f.stat().st_mode & 0o222 for f in out.folder.iterdir()), "files read-only"


def test_a_new_publication_never_touches_the_previous_one(e2e, tmp_path):
    first = publish_e2e(e2e, tmp_path)
    before = {f.name: f.read_bytes() for f in first.folder.iterdir()}
    second = publish_e2e(e2e, tmp_path)
    assert second.folder != first.folder
    assert {f.name: f.read_bytes() for f in first.folder.iterdir()} == before
    assert (tmp_path / LATEST).read_text().strip() == f"{e2e['extract_id']}/{second.version}"
    assert (tmp_path / e2e["extract_id"] / CURRENT).read_text().strip() == second.version
    assert not [p for p in (tmp_path / e2e["extract_id"]).iterdir() if p.name.startswith(".")]


def test_a_failed_publication_leaves_the_current_snapshot_in_place(e2e, tmp_path,
                                                                    monkeypatch):
    good = publish_e2e(e2e, tmp_path)
    import pipeline.snapshot as snapshot

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(snapshot.shutil, "copyfile", broken)
    with pytest.raises(OSError):
        publish_e2e(e2e, tmp_path)
    assert snapshot_folder(tmp_path) == good.folder
    assert sorted(p.name for p in (tmp_path / e2e["extract_id"]).iterdir()) == \
        sorted([good.version, CURRENT])


def test_nothing_published_says_how_to_get_a_snapshot(tmp_path):
    with pytest.raises(SnapshotError, match="research_snapshot"):
        open_snapshot(root=tmp_path)


def test_an_open_snapshot_does_not_block_a_warehouse_write(e2e, tmp_path):
    """A notebook (another process) holds the snapshot open while the pipeline writes."""
    warehouse = copy_warehouse(e2e, tmp_path / "wh")
    root = tmp_path / "snapshots"
    publish_e2e(e2e, root, warehouse)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root)], cwd=PROJECT_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert int(reader.stdout.readline()) > 0, "the reader opened the snapshot"
        con = duckdb.connect(str(warehouse))          # the pipeline's writer connection
        try:
            n = write_frame(con, "analysis.overlap", pd.DataFrame(
                {"cohort": ["started"], "arm": ["treated"], "stat": ["n"], "value": [1.0]}),
                "another-extract")
        finally:
            con.close()
        assert n == 1
        out, _ = reader.communicate("\n", timeout=120)
        assert reader.returncode == 0 and int(out) > 0, "the reader still reads its snapshot"
    finally:
        if reader.poll() is None:
            reader.kill()


def test_the_warehouse_itself_would_block_the_write(e2e, tmp_path):
    """Control: the test above is meaningful because a reader on the warehouse does block."""
    warehouse = copy_warehouse(e2e, tmp_path / "wh")
    code = ("import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); sys.stdin.readline()")
    reader = subprocess.Popen([sys.executable, "-c", code, str(warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(warehouse))
    finally:
        reader.communicate("\n", timeout=60)
