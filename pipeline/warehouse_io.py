"""Small helpers for writing one extract's rows of an analysis table in DuckDB."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                       "AND table_name = ?", [schema, name]).fetchone()[0] > 0


def write_extract_rows(con: duckdb.DuckDBPyConnection, qualified: str, select_sql: str,
                       extract_id: str) -> int:
    """Replace this extract's rows of ``qualified`` by the rows of ``select_sql``.

    The select may use ``$eid`` and must yield an ``extract_id`` column equal to it. A table
    whose columns no longer match the code is rebuilt (older extracts' rows are then dropped).
    """
    params = {"eid": extract_id} if "$eid" in select_sql else {}
    schema = qualified.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new AS {select_sql}", params)
    new_cols = [r[:2] for r in con.execute("DESCRIBE _new").fetchall()]
    if table_exists(con, qualified):  # names and types: a changed type rebuilds too
        old_cols = [r[:2] for r in con.execute(f"DESCRIBE {qualified}").fetchall()]
        if old_cols != new_cols:
            con.execute(f"DROP TABLE {qualified}")
    if not table_exists(con, qualified):
        con.execute(f"CREATE TABLE {qualified} AS SELECT * FROM _new LIMIT 0")
    con.execute(f"DELETE FROM {qualified} WHERE extract_id = ?", [extract_id])
    con.execute(f"INSERT INTO {qualified} SELECT * FROM _new")
    n = con.execute("SELECT count(*) FROM _new").fetchone()[0]
    con.execute("DROP TABLE _new")
    return n


def write_frame(con: duckdb.DuckDBPyConnection, qualified: str, frame: pd.DataFrame,
                extract_id: str) -> int:
    """Replace this extract's rows of ``qualified`` by a pandas frame (extract_id is added)."""
    con.register("_frame", frame.assign(extract_id=extract_id))
    try:
        cols = ", ".join(f'"{c}"' for c in ["extract_id", *[c for c in frame.columns
                                                               if c != "extract_id"]])
        return write_extract_rows(con, qualified, f"SELECT {cols} FROM _frame", extract_id)
    finally:
        con.unregister("_frame")


def read_extract(con: duckdb.DuckDBPyConnection, qualified: str, extract_id: str,
                 where: str = "") -> pd.DataFrame:
    """One extract's rows of an analysis table as a DataFrame (without the extract_id)."""
    sql = f"SELECT * EXCLUDE (extract_id) FROM {qualified} WHERE extract_id = $eid"
    if where:
        sql += f" AND ({where})"
    return con.execute(sql, {"eid": extract_id}).df()


def read_optional(con: duckdb.DuckDBPyConnection, table: str, extract_id: str
                  ) -> pd.DataFrame | None:
    """One extract's rows of a table, or None if the table or the rows do not exist."""
    if not table_exists(con, table):
        return None
    frame = read_extract(con, table, extract_id)
    return frame if len(frame) else None


def copy_frame(df: pd.DataFrame, path: Path, options: str) -> None:
    """Write a frame with DuckDB's COPY (fast, parallel; no pyarrow needed for Parquet).

    Datetime columns are written as DATE: the extracts carry calendar dates only. The file is
    written beside ``path`` under a hidden ``.<name>.partial`` name and moved into place when
    complete, so a process killed half-way never leaves a truncated file under ``path``.
    """
    path = Path(path)
    dates = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
    replace = ", ".join(f'CAST("{c}" AS DATE) AS "{c}"' for c in dates)
    select = f"SELECT * REPLACE ({replace}) FROM frame" if dates else "SELECT * FROM frame"
    if "format" not in options.lower() and path.suffix.lower() == ".parquet":
        options = f"FORMAT parquet, {options}" if options.strip() else "FORMAT parquet"
    partial = path.with_name(f".{path.name}.partial")
    target = partial.as_posix().replace("'", "''")
    con = duckdb.connect()
    try:
        con.register("frame", df)
        con.execute(f"COPY ({select}) TO '{target}' ({options})")
        os.replace(partial, path)
    finally:
        con.close()
        partial.unlink(missing_ok=True)
