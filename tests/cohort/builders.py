"""Build tiny staged extracts by hand for cohort tests (columns not given are empty)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from pipeline.contracts.schema import load_contract
from pipeline.ingest.warehouse import ensure_schemas, staging_ddl


def stage_rows(con: duckdb.DuckDBPyConnection, extract_id: str, extraction: dt.date,
               **tables: list[dict]) -> None:
    """Write rows straight into ``staging.<table>`` and register the extract."""
    ensure_schemas(con)
    con.execute("INSERT INTO meta.extracts VALUES (?, ?, 'test', 'fp', now()) "
                "ON CONFLICT DO NOTHING", [extract_id, extraction])
    for table in ("police_persons", "police_offences", "clinic_referrals", "clinic_sessions"):
        contract = load_contract(table)
        con.execute(staging_ddl(contract))
        rows = tables.get(table, [])
        frame = pd.DataFrame(rows, columns=contract.column_names)
        frame.insert(0, "_line", range(2, len(frame) + 2))
        frame.insert(0, "_extract_id", extract_id)
        con.register("_rows", frame)
        casts = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"'
                          for c in contract.columns)
        con.execute(f"INSERT INTO staging.{table} SELECT _extract_id, _line, {casts} FROM _rows")
        con.unregister("_rows")
