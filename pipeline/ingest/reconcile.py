"""Independent recount of one file's rows across the warehouse, for the asset checks.

It counts straight from the tables (not from what the load or staging step reported):
rows in the manifest = rows in raw + rejected lines, and rows in raw = staged rows +
quarantined rows. It also checks that every staged reference resolves to a staged parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.contracts.rules import ident
from pipeline.contracts.schema import load_contract


@dataclass(frozen=True)
class Reconciliation:
    """Counts of one file of one extract, as found in the warehouse."""

    table: str
    manifest_rows: int
    raw_rows: int
    rejected_lines: int
    staged_rows: int
    quarantined_rows: int
    status: str | None

    @property
    def loaded(self) -> bool:
        return self.manifest_rows == self.raw_rows + self.rejected_lines

    @property
    def staged(self) -> bool:
        return self.raw_rows == self.staged_rows + self.quarantined_rows

    @property
    def reconciles(self) -> bool:
        """Every row received is staged, quarantined or a rejected line (staged tables)."""
        return self.status == "staged" and self.loaded and self.staged

    def as_metadata(self) -> dict[str, int | str | None]:
        return {"manifest_rows": self.manifest_rows, "raw_rows": self.raw_rows,
                "rejected_lines": self.rejected_lines, "staged_rows": self.staged_rows,
                "quarantined_rows": self.quarantined_rows, "status": self.status}


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> int:
    try:
        return int(con.execute(sql, params).fetchone()[0])
    except duckdb.CatalogException:
        return 0


def reconcile(con: duckdb.DuckDBPyConnection, extract_id: str, table: str) -> Reconciliation:
    """Recount one table of one extract from raw, staging, quarantine and meta."""
    try:
        status = con.execute("SELECT status FROM meta.stages WHERE extract_id = ? AND "
                             "table_name = ?", [extract_id, table]).fetchone()
    except duckdb.CatalogException:
        status = None
    return Reconciliation(
        table=table,
        manifest_rows=_count(con, "SELECT coalesce(sum(manifest_rows), 0) FROM meta.loads "
                             "WHERE extract_id = ? AND table_name = ?", [extract_id, table]),
        raw_rows=_count(con, f"SELECT count(*) FROM raw.{table} WHERE _extract_id = ?",
                        [extract_id]),
        rejected_lines=_count(con, "SELECT count(DISTINCT line) FROM quarantine.rejected_lines "
                              "WHERE extract_id = ? AND table_name = ?", [extract_id, table]),
        staged_rows=_count(con, f"SELECT count(*) FROM staging.{table} WHERE _extract_id = ?",
                           [extract_id]),
        quarantined_rows=_count(con, "SELECT count(DISTINCT line) FROM quarantine.rows WHERE "
                                "extract_id = ? AND table_name = ?", [extract_id, table]),
        status=status[0] if status else None)


def unresolved_references(con: duckdb.DuckDBPyConnection, extract_id: str,
                          table: str) -> dict[str, int]:
    """Staged rows whose reference column names no staged parent row, per column."""
    out = {}
    for col in load_contract(table).columns:
        if not col.parent:
            continue
        parent, key = col.parent
        c = ident(col.name)
        out[col.name] = _count(
            con, f"SELECT count(*) FROM staging.{table} t WHERE t._extract_id = $1 AND "
            f"t.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staging.{parent} p WHERE "
            f"p._extract_id = $1 AND p.{ident(key)} = t.{c})", [extract_id])
    return out
