"""Type one raw table by its contract: rows that pass every rule go to staging, the rest to
quarantine with rule id, column and reason; the extract is stopped when it cannot be trusted.

All rules of a table run in one set-based scan (``pipeline.contracts.rules.check_query``) into a
temporary table; staging and quarantine are then two selections from it. Nothing here loops
over rows in Python. Blocking conditions (checked after quarantine is recorded, so that the
data-quality report can list every problem at once):
- a duplicated key;
- a column whose every value is invalid (wrong type, code list or format throughout);
- more than the configured share of the file quarantined or rejected (default 5%).
A blocked table gets no staged rows for this extract and ``meta.stages.status = 'blocked'``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from pipeline.contracts.rules import (
    CheckPlan,
    check_plan,
    check_query,
    ident,
    sql_str,
    typed_query,
)
from pipeline.contracts.schema import EXTRACT_TABLES, TableContract, load_contract, load_policy
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.warehouse import (
    ensure_schemas,
    raw_ddl,
    replace_partition,
    staging_ddl,
)

THROUGHOUT_KINDS = (".type", ".allowed", ".format")


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


def stage_status(con: duckdb.DuckDBPyConnection, extract_id: str, table: str) -> str | None:
    """'staged', 'blocked' or None (not staged since the last raw load)."""
    row = con.execute("SELECT status FROM meta.stages WHERE extract_id = ? AND table_name = ?",
                      [extract_id, table]).fetchone()
    return row[0] if row else None


def accepted(con: duckdb.DuckDBPyConnection, extract_id: str) -> bool:
    """True once every table of the extract has been staged without being blocked.

    Recorded in ``meta.accepted`` and kept when files are re-loaded, so that a changed file
    cannot slip in between re-loading one table and re-staging the others.
    """
    return con.execute("SELECT count(*) FROM meta.accepted WHERE extract_id = ?",
                       [extract_id]).fetchone()[0] > 0


def _preconditions(con: duckdb.DuckDBPyConnection, extract_id: str,
                   contract: TableContract) -> tuple[dt.date, str, int, int]:
    """Extraction date, file name, manifest rows and rejected lines of a loaded table."""
    xdate = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                        [extract_id]).fetchone()
    load = con.execute("SELECT file_name, manifest_rows, rejected_lines FROM meta.loads "
                       "WHERE extract_id = ? AND table_name = ?",
                       [extract_id, contract.table]).fetchone()
    if xdate is None or load is None:
        raise ExtractError(f"{contract.file}: extract {extract_id!r} has no raw load of this "
                           "file; materialise its raw table first")
    for parent in contract.parents:
        status = stage_status(con, extract_id, parent)
        if status != "staged":
            what = "was blocked" if status == "blocked" else "has not been staged"
            raise ExtractError(f"{contract.file}: cannot be checked because "
                               f"{load_contract(parent).file} {what}; fix and stage it first")
    return xdate[0], load[0], int(load[1]), int(load[2])


def _register_rules(con: duckdb.DuckDBPyConnection, plan: CheckPlan) -> None:
    rows = ", ".join(f"({i}, {sql_str(r.rule_id)}, {sql_str(r.column)}, {sql_str(r.reason)})"
                     for i, r in enumerate(plan.rules, start=1))
    con.execute("CREATE OR REPLACE TEMP TABLE _rules AS SELECT * FROM "
                f"(VALUES {rows}) v(i, rule_id, column_name, reason)")


def _blocking_message(con: duckdb.DuckDBPyConnection, extract_id: str, plan: CheckPlan,
                      file: str, by_rule: dict[str, int], non_empty: dict[str, int],
                      quarantined: int, rejected: int, received: int,
                      max_share: float) -> str | None:
    """The first blocking condition met, as a one-line message, or None."""
    table = plan.contract.table
    for rule in plan.rules:
        if rule.kind == "unique" and by_rule.get(rule.rule_id):
            col = ident(rule.column)
            lines = con.execute(
                f"SELECT list(_line ORDER BY _line) FROM raw.{table} WHERE _extract_id = ? AND "
                f"_line IN (SELECT _line FROM _hit WHERE rule_id = ?) GROUP BY {col} "
                "ORDER BY min(_line) LIMIT 1", [extract_id, rule.rule_id]).fetchone()[0]
            shown = " and ".join(str(x) for x in lines[:2])
            return (f"{file}: column {rule.column}: {by_rule[rule.rule_id]} rows share a "
                    f"duplicated {rule.column} (first on lines {shown}); every row needs its own "
                    f"{rule.column}: remove the duplicate rows or re-issue the keys and re-send")
    min_values = load_policy().wrong_type_min_values
    for rule in plan.rules:
        if not rule.rule_id.endswith(THROUGHOUT_KINDS):
            continue
        n = non_empty.get(rule.column, 0)
        if n >= min_values and by_rule.get(rule.rule_id, 0) == n:
            first = con.execute("SELECT min(_line) FROM _hit WHERE rule_id = ?",
                                [rule.rule_id]).fetchone()[0]
            return (f"{file}: column {rule.column}: none of its {n} values is valid ("
                    f"{rule.reason}; first at line {first}); the column is wrong throughout "
                    "(renamed, shifted or in another format): fix it and re-send")
    bad = quarantined + rejected
    if received and bad / received > max_share:
        top = max(by_rule.items(), key=lambda kv: kv[1]) if by_rule else None
        common = f"; most common rule: {top[0]} ({top[1]} rows)" if top else ""
        return (f"{file}: {quarantined} rows quarantined and {rejected} lines rejected of "
                f"{received} ({bad / received:.1%}), above the {max_share:.0%} limit{common}; "
                "see the data-quality report, fix the rows and re-send")
    return None


def stage(con: duckdb.DuckDBPyConnection, extract_id: str, contract: TableContract, *,
          max_quarantine_share: float | None = None) -> StageCounts:
    """Apply the contract's rules: typed rows to ``staging``, failing rows to quarantine.

    Raises ``ExtractError`` (after recording the quarantine) when the table is blocked.
    Re-staging an extract replaces its earlier result (idempotent).
    """
    ensure_schemas(con)
    table = contract.table
    xdate, file, received, rejected = _preconditions(con, extract_id, contract)
    max_share = (load_policy().max_quarantine_share if max_quarantine_share is None
                 else max_quarantine_share)
    plan = check_plan(contract)
    con.execute(raw_ddl(contract))
    con.execute(staging_ddl(contract))
    params = {"eid": extract_id, "xdate": xdate}
    try:
        _register_rules(con, plan)
        # only the failing rows are materialised; staging re-types the rest on insert
        con.execute(f"CREATE OR REPLACE TEMP TABLE _failed AS {check_query(plan)}", params)
        con.execute("CREATE OR REPLACE TEMP TABLE _hit AS SELECT c._line, c._key, r.rule_id, "
                    "r.column_name, r.reason, c.i FROM (SELECT _line, _key, unnest(_hits) AS i "
                    "FROM _failed) c JOIN _rules r USING (i)")
        quarantined = con.execute("SELECT count(*) FROM _failed").fetchone()[0]
        by_rule = dict(con.execute("SELECT rule_id, count(*) FROM _hit GROUP BY rule_id "
                                   "ORDER BY rule_id").fetchall())
        counts = ", ".join(f"count({ident(c)})" for c in contract.column_names)
        filled = con.execute(f"SELECT count(*), {counts} FROM raw.{table} "
                             "WHERE _extract_id = ?", [extract_id]).fetchone()
        raw_rows = filled[0]
        non_empty = dict(zip(contract.column_names, filled[1:], strict=True))
        message = _blocking_message(con, extract_id, plan, file, by_rule, non_empty,
                                    quarantined, rejected, received, max_share)
        staged = 0 if message else raw_rows - quarantined
        _write(con, contract, extract_id, raw_rows, staged, quarantined, non_empty, message)
    finally:
        con.execute("DROP TABLE IF EXISTS _failed; DROP TABLE IF EXISTS _hit; "
                    "DROP TABLE IF EXISTS _rules")
    if message:
        raise ExtractError(message)
    return StageCounts(table, raw_rows, staged, quarantined, by_rule)


def _write(con: duckdb.DuckDBPyConnection, contract: TableContract, extract_id: str,
           raw_rows: int, staged: int, quarantined: int, non_empty: dict[str, int],
           message: str | None) -> None:
    """Replace this extract's staging, quarantine, profile and status rows in one transaction.

    Staged rows are written in file order, as the original loader did, so that re-staging the
    same file gives the same table."""
    table = contract.table
    cols = ", ".join(ident(c) for c in contract.column_names)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        replace_partition(con, f"staging.{table}", extract_id, "_extract_id")
        where = f"WHERE extract_id = {sql_str(extract_id)} AND table_name = {sql_str(table)}"
        con.execute("; ".join(f"DELETE FROM {book} {where}" for book in (
            "quarantine.rows", "meta.stages", "meta.column_profile")))
        con.execute("INSERT INTO quarantine.rows SELECT ?, ?, _line, _key, rule_id, "
                    "column_name, reason FROM _hit", [extract_id, table])
        profile = ", ".join(f"({sql_str(c)}, {int(n)})" for c, n in non_empty.items())
        con.execute(
            "INSERT INTO meta.column_profile SELECT $eid, $t, p.c, $rows, p.n, "
            "coalesce(q.n, 0) FROM (VALUES " + profile + ") p(c, n) LEFT JOIN (SELECT "
            "column_name, count(DISTINCT _line) AS n FROM _hit GROUP BY 1) q "
            "ON q.column_name = p.c", {"eid": extract_id, "t": table, "rows": raw_rows})
        if message is None:
            con.execute(f"INSERT INTO staging.{table} (_extract_id, _line, {cols}) "
                        f"SELECT $eid, t._line, {cols} FROM ({typed_query(contract)}) t "
                        "ANTI JOIN _failed f ON f._line = t._line ORDER BY t._line",
                        {"eid": extract_id})
        con.execute("INSERT INTO meta.stages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [extract_id, table, raw_rows, staged, quarantined,
                     "blocked" if message else "staged", message, now])
        con.execute("INSERT INTO meta.accepted SELECT ?, ? WHERE (SELECT count(DISTINCT "
                    "table_name) FROM meta.stages WHERE extract_id = ? AND status = 'staged') "
                    f"= {len(EXTRACT_TABLES)} ON CONFLICT DO NOTHING",
                    [extract_id, now, extract_id])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
