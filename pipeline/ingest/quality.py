"""Data-quality figures of one extract, read from the warehouse (counts only, never values).

``data_quality_summary`` is the small, stable dictionary the funder report and asset metadata
use. ``quality_details`` adds what the providers' report needs: completeness by column, the
rules that fired with their reasons, rejected lines, the attestation and the trend against the
previous extract.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract
from pipeline.ingest.reconcile import reconcile


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        return []


def linkage(con: duckdb.DuckDBPyConnection, extract_id: str) -> dict:
    """How many clinic people (and referrals) as received link to a police person.

    Counted on the delivered (raw) keys of the agreed format, before quarantine, so that it
    measures whether both providers pseudonymised with the same key.
    """
    pattern = load_contract("clinic_referrals").column("person_key").pattern
    rows = _rows(con, """
        WITH c AS (SELECT person_key FROM raw.clinic_referrals
                   WHERE _extract_id = $1 AND regexp_full_match(person_key, $2)),
             p AS (SELECT DISTINCT person_key FROM raw.police_persons WHERE _extract_id = $1)
        SELECT count(DISTINCT c.person_key), count(DISTINCT p.person_key), count(*),
               count(p.person_key)
        FROM c LEFT JOIN p USING (person_key)""", [extract_id, pattern])
    if not rows:
        return {"clinic_people": 0, "linked_people": 0, "referrals": 0, "linked_referrals": 0,
                "rate": None}
    people, linked, referrals, linked_refs = (int(x) for x in rows[0])
    return {"clinic_people": people, "linked_people": linked, "referrals": referrals,
            "linked_referrals": linked_refs,
            "rate": round(linked / people, 4) if people else None}


def _status(con: duckdb.DuckDBPyConnection, extract_id: str, table: str) -> str:
    row = _rows(con, "SELECT status FROM meta.stages WHERE extract_id = ? AND table_name = ?",
                [extract_id, table])
    if row:
        return row[0][0]
    loaded = _rows(con, "SELECT 1 FROM meta.loads WHERE extract_id = ? AND table_name = ?",
                   [extract_id, table])
    return "loaded" if loaded else "not_loaded"


def data_quality_summary(con: duckdb.DuckDBPyConnection, extract_id: str) -> dict:
    """Counts for one extract: per table received / loaded / quarantined / rejected, rows
    quarantined by rule, rejected lines by reason and the police-clinic linkage rate.

    Keys: ``extract_id``, ``extraction_date`` (ISO text or None), ``tables`` (table ->
    ``received``, ``loaded``, ``quarantined``, ``rejected``, ``status``), ``totals`` (the same
    summed), ``quarantined_by_rule`` (rule id -> rows), ``rejected_by_rule`` ("<table>.<rule
    id>" -> lines), ``linkage`` (see ``linkage``) and ``reconciles`` (every file accounted for:
    received = loaded + quarantined + rejected). "loaded" means staged (passed every rule).
    Read-only: works on a read-only connection and on a warehouse without these tables.
    """
    xdate = _rows(con, "SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                  [extract_id])
    tables = {}
    reconciles = True
    for table in EXTRACT_TABLES:
        rec = reconcile(con, extract_id, table)
        status = _status(con, extract_id, table)
        tables[table] = {"received": rec.manifest_rows, "loaded": rec.staged_rows,
                         "quarantined": rec.quarantined_rows, "rejected": rec.rejected_lines,
                         "status": status}
        reconciles &= rec.reconciles
    totals = {k: sum(t[k] for t in tables.values())
              for k in ("received", "loaded", "quarantined", "rejected")}
    by_rule = dict(_rows(con, "SELECT rule_id, count(DISTINCT line) FROM quarantine.rows "
                              "WHERE extract_id = ? GROUP BY rule_id ORDER BY rule_id",
                         [extract_id]))
    rejected = dict(_rows(con, "SELECT table_name || '.' || rule_id, count(DISTINCT line) "
                               "FROM quarantine.rejected_lines WHERE extract_id = ? "
                               "GROUP BY 1 ORDER BY 1", [extract_id]))
    return {"extract_id": extract_id,
            "extraction_date": xdate[0][0].isoformat() if xdate else None,
            "tables": tables, "totals": totals,
            "quarantined_by_rule": {k: int(v) for k, v in by_rule.items()},
            "rejected_by_rule": {k: int(v) for k, v in rejected.items()},
            "linkage": linkage(con, extract_id), "reconciles": reconciles}


@dataclass
class QualityDetails:
    """Everything the providers' data-quality report shows."""

    summary: dict
    previous: dict | None
    files: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    completeness: list[dict] = field(default_factory=list)
    attestation: list[dict] = field(default_factory=list)


def previous_extract(con: duckdb.DuckDBPyConnection, extract_id: str) -> str | None:
    """The loaded extract extracted most recently before this one (for trends)."""
    rows = _rows(con, """
        SELECT e.extract_id FROM meta.extracts e, meta.extracts this
        WHERE this.extract_id = $1 AND e.extract_id <> $1
          AND (e.extraction_date, e.extract_id) < (this.extraction_date, this.extract_id)
          AND EXISTS (SELECT 1 FROM meta.loads l WHERE l.extract_id = e.extract_id)
        ORDER BY e.extraction_date DESC, e.extract_id DESC LIMIT 1""", [extract_id])
    return rows[0][0] if rows else None


def _completeness(con: duckdb.DuckDBPyConnection, extract_id: str) -> dict:
    return {(t, c): (rows, filled, quarantined) for t, c, rows, filled, quarantined in _rows(
        con, "SELECT table_name, column_name, rows, non_empty, quarantined FROM "
             "meta.column_profile WHERE extract_id = ?", [extract_id])}


def quality_details(con: duckdb.DuckDBPyConnection, extract_id: str) -> QualityDetails:
    """The summary plus completeness, rules, rejected lines, attestation and trends."""
    summary = data_quality_summary(con, extract_id)
    prev_id = previous_extract(con, extract_id)
    previous = data_quality_summary(con, prev_id) if prev_id else None
    out = QualityDetails(summary, previous)
    loads = {r[0]: r[1:] for r in _rows(
        con, "SELECT table_name, blank_lines, notes FROM meta.loads WHERE extract_id = ?",
        [extract_id])}
    messages = dict(_rows(con, "SELECT table_name, message FROM meta.stages WHERE "
                               "extract_id = ? AND message IS NOT NULL", [extract_id]))
    for table, t in summary["tables"].items():
        blank, notes = loads.get(table, (0, None))
        prev = (previous or {}).get("tables", {}).get(table)
        out.files.append({"table": table, "file": load_contract(table).file, **t,
                          "blank_lines": blank or 0, "notes": notes or "",
                          "message": messages.get(table, ""),
                          "previous_received": prev["received"] if prev else None,
                          "previous_loaded": prev["loaded"] if prev else None,
                          "previous_quarantined": prev["quarantined"] if prev else None})
    out.rules = [{"table": t, "rule_id": r, "column": c, "reason": reason, "rows": int(n)}
                 for t, r, c, reason, n in _rows(con, """
        SELECT table_name, rule_id, column_name, any_value(reason), count(DISTINCT line)
        FROM quarantine.rows WHERE extract_id = ? GROUP BY ALL ORDER BY 1, 5 DESC, 2""",
                                                 [extract_id])]
    out.rejected = [{"table": t, "rule_id": r, "reason": reason, "lines": int(n),
                     "first_line": int(first)}
                    for t, r, reason, n, first in _rows(con, """
        SELECT table_name, rule_id, any_value(reason), count(DISTINCT line), min(line)
        FROM quarantine.rejected_lines WHERE extract_id = ? GROUP BY ALL ORDER BY 1, 2""",
                                                        [extract_id])]
    now, before = _completeness(con, extract_id), (
        _completeness(con, prev_id) if prev_id else {})
    for table in EXTRACT_TABLES:
        for col in load_contract(table).columns:
            if (table, col.name) not in now:
                continue
            rows, filled, quarantined = now[(table, col.name)]
            prev = before.get((table, col.name))
            out.completeness.append({
                "table": table, "column": col.name, "required": col.required, "rows": rows,
                "filled": filled, "filled_share": filled / rows if rows else None,
                "quarantined": quarantined,
                "previous_share": prev[1] / prev[0] if prev and prev[0] else None})
    out.attestation = [{"table": t, "expectations": int(n), "failed": int(f),
                        "rows_checked": int(c), "rows_staged": int(s)}
                       for t, n, f, c, s in _rows(con, """
        SELECT table_name, count(*), count(*) FILTER (WHERE NOT success), max(rows_checked),
               max(rows_staged) FROM meta.attestations WHERE extract_id = ?
        GROUP BY 1 ORDER BY 1""", [extract_id])]
    return out


def generated_at() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
