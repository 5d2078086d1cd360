"""Warehouse layout in DuckDB: schemas and the bookkeeping tables every layer writes to.

None of these tables holds a cell value of a delivered file except ``raw.*`` and ``staging.*``:
quarantine and metadata carry line numbers, keys of the agreed pseudonymised format, rule ids,
column names, fixed reasons and counts.
"""

from __future__ import annotations

import duckdb

from pipeline.contracts.rules import ident
from pipeline.contracts.schema import ColumnSpec, TableContract

SCHEMAS = ("raw", "staging", "quarantine", "analysis", "meta")

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rows (
    extract_id VARCHAR, table_name VARCHAR, line BIGINT, record_key VARCHAR,
    rule_id VARCHAR, column_name VARCHAR, reason VARCHAR)
"""
# lines that could not be parsed into the header's columns: never loaded, so counted here
REJECTED_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rejected_lines (
    extract_id VARCHAR, table_name VARCHAR, line BIGINT, record_key VARCHAR,
    rule_id VARCHAR, reason VARCHAR)
"""
LOADS_DDL = """
CREATE TABLE IF NOT EXISTS meta.loads (
    extract_id VARCHAR, table_name VARCHAR, file_name VARCHAR, sha256 VARCHAR,
    manifest_rows BIGINT, raw_rows BIGINT, rejected_lines BIGINT, loaded_at TIMESTAMP)
"""
# columns added after the first release (existing warehouses gain them on the next load)
LOADS_EXTRA = {"blank_lines": "BIGINT", "notes": "VARCHAR"}

EXTRACTS_DDL = """
CREATE TABLE IF NOT EXISTS meta.extracts (
    extract_id VARCHAR PRIMARY KEY, extraction_date DATE, provider VARCHAR,
    fingerprint VARCHAR, first_loaded_at TIMESTAMP)
"""
STAGES_DDL = """
CREATE TABLE IF NOT EXISTS meta.stages (
    extract_id VARCHAR, table_name VARCHAR, raw_rows BIGINT, staged_rows BIGINT,
    quarantined_rows BIGINT, status VARCHAR, message VARCHAR, staged_at TIMESTAMP)
"""
PROFILE_DDL = """
CREATE TABLE IF NOT EXISTS meta.column_profile (
    extract_id VARCHAR, table_name VARCHAR, column_name VARCHAR, rows BIGINT,
    non_empty BIGINT, quarantined BIGINT)
"""
# an extract whose four tables were all staged once: its files may no longer change
ACCEPTED_DDL = """
CREATE TABLE IF NOT EXISTS meta.accepted (extract_id VARCHAR PRIMARY KEY, accepted_at TIMESTAMP)
"""
ATTESTATIONS_DDL = """
CREATE TABLE IF NOT EXISTS meta.attestations (
    extract_id VARCHAR, table_name VARCHAR, expectation VARCHAR, columns VARCHAR,
    success BOOLEAN, element_count BIGINT, unexpected_count BIGINT, rows_checked BIGINT,
    rows_staged BIGINT, checked_at TIMESTAMP)
"""


BOOK_TABLES = ("quarantine.rows", "quarantine.rejected_lines", "meta.loads", "meta.extracts",
               "meta.stages", "meta.column_profile", "meta.accepted", "meta.attestations")


def _complete(con: duckdb.DuckDBPyConnection) -> bool:
    """True when every schema, bookkeeping table and added column already exists."""
    tables = ", ".join(f"'{t}'" for t in BOOK_TABLES)
    extra = ", ".join(f"'{c}'" for c in LOADS_EXTRA)
    n_tables, n_extra = con.execute(
        f"SELECT (SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        f"AND schema_name || '.' || table_name IN ({tables})), "
        f"(SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        f"AND schema_name = 'meta' AND table_name = 'loads' AND column_name IN ({extra}))"
    ).fetchone()
    return n_tables == len(BOOK_TABLES) and n_extra == len(LOADS_EXTRA)


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and bookkeeping tables if they do not exist (idempotent)."""
    if _complete(con):
        return
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for ddl in (QUARANTINE_DDL, REJECTED_DDL, LOADS_DDL, EXTRACTS_DDL, STAGES_DDL, PROFILE_DDL,
                ACCEPTED_DDL, ATTESTATIONS_DDL):
        con.execute(ddl)
    for column, kind in LOADS_EXTRA.items():
        con.execute(f"ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS {column} {kind}")


def compression(col: ColumnSpec, as_text: bool) -> str:
    """A compression hint for a text column, from what the contract says about its values.

    Coded values and dates written as text repeat a lot (dictionary); keys vary (FSST).
    Choosing up front spares DuckDB trying every method on every block, which is most of the
    cost of writing millions of rows, and stores the same number of blocks.
    """
    if not as_text and col.type != "VARCHAR":
        return ""
    if col.unique or col.pseudonymised or col.references:
        return " USING COMPRESSION fsst"
    return " USING COMPRESSION dictionary"


def raw_ddl(contract: TableContract) -> str:
    """Raw table: every contract column as delivered text, plus load metadata."""
    cols = ", ".join(f"{ident(c.name)} VARCHAR{compression(c, True)}" for c in contract.columns)
    return (f"CREATE TABLE IF NOT EXISTS raw.{contract.table} "
            f"(_extract_id VARCHAR USING COMPRESSION dictionary, _line BIGINT, {cols})")


def staging_ddl(contract: TableContract) -> str:
    """Staging table: every contract column in its contract type, plus the source line."""
    cols = ", ".join(f"{ident(c.name)} {c.type}{compression(c, False)}"
                     for c in contract.columns)
    return (f"CREATE TABLE IF NOT EXISTS staging.{contract.table} "
            f"(_extract_id VARCHAR USING COMPRESSION dictionary, _line BIGINT, {cols})")


def replace_partition(con: duckdb.DuckDBPyConnection, table: str, extract_id: str,
                      column: str = "extract_id") -> None:
    """Delete one extract's rows so that re-loading an extract is idempotent."""
    con.execute(f"DELETE FROM {table} WHERE {ident(column)} = ?", [extract_id])


def delete_table_rows(con: duckdb.DuckDBPyConnection, bookkeeping: str, extract_id: str,
                      table: str) -> None:
    """Delete one extract's rows of one table from a bookkeeping table (quarantine, meta)."""
    con.execute(f"DELETE FROM {bookkeeping} WHERE extract_id = ? AND table_name = ?",
                [extract_id, table])
