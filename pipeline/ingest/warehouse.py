"""Warehouse layout in DuckDB: schemas and the bookkeeping tables every layer writes to."""

from __future__ import annotations

import duckdb

from pipeline.contracts.rules import ident
from pipeline.contracts.schema import TableContract

SCHEMAS = ("raw", "staging", "quarantine", "analysis", "meta")

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rows (
    extract_id VARCHAR, table_name VARCHAR, line BIGINT, record_key VARCHAR,
    rule_id VARCHAR, column_name VARCHAR, reason VARCHAR)
"""
LOADS_DDL = """
CREATE TABLE IF NOT EXISTS meta.loads (
    extract_id VARCHAR, table_name VARCHAR, file_name VARCHAR, sha256 VARCHAR,
    manifest_rows BIGINT, raw_rows BIGINT, rejected_lines BIGINT, loaded_at TIMESTAMP)
"""

EXTRACTS_DDL = """
CREATE TABLE IF NOT EXISTS meta.extracts (
    extract_id VARCHAR PRIMARY KEY, extraction_date DATE, provider VARCHAR,
    fingerprint VARCHAR, first_loaded_at TIMESTAMP)
"""


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and bookkeeping tables if they do not exist (idempotent)."""
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(QUARANTINE_DDL)
    con.execute(LOADS_DDL)
    con.execute(EXTRACTS_DDL)


def raw_ddl(contract: TableContract) -> str:
    """Raw table: every contract column as delivered text, plus load metadata."""
    cols = ", ".join(f"{ident(c)} VARCHAR" for c in contract.column_names)
    return (f"CREATE TABLE IF NOT EXISTS raw.{contract.table} "
            f"(_extract_id VARCHAR, _line BIGINT, {cols})")


def staging_ddl(contract: TableContract) -> str:
    """Staging table: every contract column in its contract type, plus the source line."""
    cols = ", ".join(f"{ident(c.name)} {c.type}" for c in contract.columns)
    return (f"CREATE TABLE IF NOT EXISTS staging.{contract.table} "
            f"(_extract_id VARCHAR, _line BIGINT, {cols})")


def replace_partition(con: duckdb.DuckDBPyConnection, table: str, extract_id: str,
                      column: str = "extract_id") -> None:
    """Delete one extract's rows so that re-loading an extract is idempotent."""
    con.execute(f"DELETE FROM {table} WHERE {ident(column)} = ?", [extract_id])
