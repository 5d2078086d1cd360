"""Load one delivered CSV into ``raw.*`` as text, then type it into ``staging.*`` or quarantine.

Every input row ends up staged or quarantined (with rule, column and reason); the counts are
returned so that an asset check can prove they reconcile with the manifest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.contracts.rules import ident, raw_text, sql_str, table_rules, typed_expr
from pipeline.contracts.schema import TableContract
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.manifest import Manifest, verify_file
from pipeline.ingest.warehouse import ensure_schemas, raw_ddl, replace_partition, staging_ddl


@dataclass(frozen=True)
class LoadCounts:
    """Row accounting for one file: manifest rows = raw rows + rejected lines."""

    table: str
    manifest_rows: int
    raw_rows: int
    rejected_lines: int

    @property
    def reconciles(self) -> bool:
        return self.manifest_rows == self.raw_rows + self.rejected_lines


@dataclass(frozen=True)
class StageCounts:
    """Row accounting for staging: raw rows = staged rows + quarantined rows."""

    table: str
    raw_rows: int
    staged_rows: int
    quarantined_rows: int
    quarantine_by_rule: dict[str, int]

    @property
    def reconciles(self) -> bool:
        return self.raw_rows == self.staged_rows + self.quarantined_rows


def _csv_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    rel = con.execute(f"SELECT * FROM read_csv({sql_str(path.as_posix())}, header = true, "
                      "all_varchar = true) LIMIT 0")
    return [d[0] for d in rel.description]


def load_raw(con: duckdb.DuckDBPyConnection, manifest: Manifest,
             contract: TableContract) -> LoadCounts:
    """Verify the file against the manifest and load its rows, as text, into ``raw.<table>``."""
    ensure_schemas(con)
    path = manifest.folder / contract.file
    digest = verify_file(manifest, contract.file)
    found = _csv_columns(con, path)
    missing = [c for c in contract.column_names if c not in found]
    if missing:
        raise ExtractError(f"{path}: column {missing[0]!r} is missing from the header "
                           f"(expected: {', '.join(contract.column_names)}); add or rename it")
    register_extract(con, manifest)
    con.execute(raw_ddl(contract))
    replace_partition(con, f"raw.{contract.table}", manifest.extract_id, "_extract_id")
    cols = ", ".join(ident(c) for c in contract.column_names)
    con.execute(
        f"INSERT INTO raw.{contract.table} (_extract_id, _line, {cols}) "
        f"SELECT ?, row_number() OVER () + 1, {cols} "
        f"FROM read_csv({sql_str(path.as_posix())}, header = true, all_varchar = true)",
        [manifest.extract_id])
    raw_rows = con.execute(f"SELECT count(*) FROM raw.{contract.table} WHERE _extract_id = ?",
                           [manifest.extract_id]).fetchone()[0]
    counts = LoadCounts(contract.table, manifest.files[contract.file].rows, raw_rows, 0)
    con.execute("DELETE FROM meta.loads WHERE extract_id = ? AND table_name = ?",
                [manifest.extract_id, contract.table])
    con.execute("INSERT INTO meta.loads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [manifest.extract_id, contract.table, contract.file, digest,
                 counts.manifest_rows, raw_rows, counts.rejected_lines,
                 dt.datetime.now(dt.UTC).replace(tzinfo=None)])
    if not counts.reconciles:
        raise ExtractError(f"{path}: {raw_rows} data rows read but the manifest says "
                           f"{counts.manifest_rows}; re-send the file or correct the manifest")
    return counts


def register_extract(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
    """Record the extract (id, extraction date, content fingerprint) the first time it is seen."""
    con.execute("INSERT INTO meta.extracts VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [manifest.extract_id, manifest.extraction_date, manifest.provider,
                 manifest.fingerprint, dt.datetime.now(dt.UTC).replace(tzinfo=None)])


def extraction_date(con: duckdb.DuckDBPyConnection, extract_id: str) -> dt.date:
    """The extraction date recorded for a loaded extract."""
    row = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                      [extract_id]).fetchone()
    if row is None:
        raise ExtractError(f"extract {extract_id!r} has not been loaded; materialise its raw "
                           "tables first")
    return row[0]


def stage(con: duckdb.DuckDBPyConnection, extract_id: str,
          contract: TableContract) -> StageCounts:
    """Apply the contract's row rules: typed rows to ``staging``, failing rows to quarantine."""
    ensure_schemas(con)
    table = contract.table
    con.execute(staging_ddl(contract))
    replace_partition(con, f"staging.{table}", extract_id, "_extract_id")
    con.execute("DELETE FROM quarantine.rows WHERE extract_id = ? AND table_name = ?",
                [extract_id, table])
    key = contract.column(contract.primary_key)
    # the key is echoed only when it has the agreed (pseudonymised) format: never a raw value
    key_sql = raw_text(key)
    if key.pattern:
        key_sql = (f"CASE WHEN regexp_full_match({key_sql}, {sql_str(key.pattern)}) "
                   f"THEN {key_sql} END")
    rules = table_rules(contract)
    if rules:
        union = " UNION ALL ".join(
            f"SELECT _line, {sql_str(r.rule_id)} AS rule_id, {sql_str(r.column)} AS col, "
            f"{sql_str(r.reason)} AS reason FROM raw.{table} r "
            f"WHERE r._extract_id = $eid AND ({r.violation})" for r in rules)
        con.execute(
            f"INSERT INTO quarantine.rows SELECT $eid, {sql_str(table)}, v._line, k.key, "
            f"v.rule_id, v.col, v.reason FROM ({union}) v JOIN "
            f"(SELECT _line, {key_sql} AS key FROM raw.{table} r WHERE _extract_id = $eid) k "
            "USING (_line)", {"eid": extract_id})
    typed = ", ".join(f"{typed_expr(c)} AS {ident(c.name)}" for c in contract.columns)
    con.execute(
        f"INSERT INTO staging.{table} SELECT r._extract_id, r._line, {typed} "
        f"FROM raw.{table} r WHERE r._extract_id = $eid AND r._line NOT IN "
        f"(SELECT line FROM quarantine.rows WHERE extract_id = $eid "
        f"AND table_name = {sql_str(table)})", {"eid": extract_id})
    raw_rows, staged = con.execute(
        f"SELECT (SELECT count(*) FROM raw.{table} WHERE _extract_id = $eid), "
        f"(SELECT count(*) FROM staging.{table} WHERE _extract_id = $eid)",
        {"eid": extract_id}).fetchone()
    by_rule = dict(con.execute(
        "SELECT rule_id, count(DISTINCT line) FROM quarantine.rows WHERE extract_id = ? "
        "AND table_name = ? GROUP BY rule_id ORDER BY rule_id", [extract_id, table]).fetchall())
    quarantined = con.execute(
        "SELECT count(DISTINCT line) FROM quarantine.rows WHERE extract_id = ? AND table_name = ?",
        [extract_id, table]).fetchone()[0]
    return StageCounts(table, raw_rows, staged, quarantined, by_rule)
