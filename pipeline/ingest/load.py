"""Load one delivered CSV into ``raw.*`` as text, after every file-level check has passed.

Order of work for one file (any failure raises a one-line ``ExtractError`` and writes nothing):
1. the file exists, is not empty, matches its manifest hash and is UTF-8 text (``file_scan``);
2. the header is comma-delimited, names every contract column and nothing else, and no column
   name looks like a direct identifier;
3. a file already loaded and accepted under this extract id has not changed;
4. DuckDB parses the rows into a temporary table; lines it cannot split into the header's
   columns are kept aside as rejected lines (numbers and reasons only, never their text);
   rows + rejected lines must equal the manifest's row count;
5. the identifier guard scans the values;
6. only then are the rows written to ``raw.<table>`` with their physical line numbers, the
   rejected lines to ``quarantine.rejected_lines`` and the counts to ``meta.loads``.
Staging (typing, row rules, quarantine) is in ``pipeline.ingest.stage``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import duckdb

from pipeline.contracts.rules import ident, sql_str
from pipeline.contracts.schema import TableContract, load_contract, load_policy
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.file_scan import FileScan, blank_line_numbers, header_columns
from pipeline.ingest.identifiers import (
    header_label,
    refuse_identifier_columns,
    refuse_identifier_values,
    stored_columns,
)
from pipeline.ingest.manifest import Manifest, scan_delivered
from pipeline.ingest.stage import StageCounts, accepted, stage
from pipeline.ingest.warehouse import delete_table_rows, ensure_schemas, raw_ddl, replace_partition

__all__ = ["LoadCounts", "StageCounts", "extraction_date", "load_raw", "register_extract",
           "stage"]

# DuckDB's reasons for not splitting a line, as rule ids and reasons a data manager understands
REJECT_RULES = {
    "MISSING COLUMNS": ("file.missing_fields",
                        "the line has fewer fields than the header (a missing value or comma)"),
    "TOO MANY COLUMNS": ("file.extra_fields",
                         "the line has more fields than the header (an extra comma, or a comma "
                         "inside a value)"),
    "LINE SIZE OVER MAXIMUM": ("file.line_too_long", "the line is longer than {max} bytes"),
}
TRUNCATED = ("file.truncated_last_line",
             "the last line is incomplete (the file was cut off); re-send the whole file")
UNPARSEABLE = ("file.unparseable", "the line could not be read as CSV")


@dataclass(frozen=True)
class LoadCounts:
    """Row accounting for one file: manifest rows = raw rows + rejected lines."""

    table: str
    manifest_rows: int
    raw_rows: int
    rejected_lines: int
    blank_lines: int = 0

    @property
    def reconciles(self) -> bool:
        return self.manifest_rows == self.raw_rows + self.rejected_lines


def _check_header(scan: FileScan, contract: TableContract) -> list[str]:
    """The header's columns; missing, renamed, duplicated or unexpected ones are errors.

    A header cell that is not a contract column may be a data value (a file sent without its
    header line, or another file altogether): ``header_label`` names it without echoing it.
    """
    path = scan.path
    found = header_columns(scan)
    if "" in found:
        raise ExtractError(f"{path}: line 1: column {found.index('') + 1} of the header has no "
                           "name (a stray comma?); remove it or name the column")
    refuse_identifier_columns(path, found, contract)
    expected = contract.column_names
    dupes = sorted({c for c in found if found.count(c) > 1}, key=found.index)
    if dupes:
        label = header_label(found, found.index(dupes[0]), contract)
        raise ExtractError(f"{path}: line 1: column {label} appears more than once in the "
                           "header; send each column once")
    missing = [c for c in expected if c not in found]
    extra = [i for i, c in enumerate(found) if c not in expected]
    if missing:
        hint = ""
        close = [i for i in extra if found[i].strip().lower() == missing[0].lower()]
        if close:
            hint = f"; rename {header_label(found, close[0], contract)} to {missing[0]!r}"
        elif extra:
            hint = (f"; found {header_label(found, extra[0], contract)} instead (rename it if "
                    "it is this column; is the header line missing?)")
        raise ExtractError(f"{path}: line 1: column {missing[0]!r} is missing from the header"
                           f"{hint} (expected: {', '.join(expected)})")
    if extra:
        raise ExtractError(f"{path}: line 1: column {header_label(found, extra[0], contract)} "
                           "is not in the data contract; remove it (only these columns may be "
                           f"sent: {', '.join(expected)})")
    return found


def clean_value(name: str) -> str:
    """SQL for a delivered value without CSV quotes and surrounding spaces; empty is NULL.

    Most values need neither, so the cheap test comes first (no string copy in the usual case).
    """
    c = ident(name)
    unquoted = (f"CASE WHEN length({c}) >= 2 AND starts_with({c}, '\"') AND ends_with({c}, '\"') "
                f"THEN replace(substr({c}, 2, length({c}) - 2), '\"\"', '\"') ELSE {c} END")
    return (f"CASE WHEN starts_with({c}, ' ') OR ends_with({c}, ' ') OR starts_with({c}, '\"') "
            f"THEN NULLIF(trim({unquoted}), '') ELSE NULLIF({c}, '') END")


def read_csv_sql(scan: FileScan, header: list[str], rejects: str) -> str:
    """``read_csv`` of a delivered file: one record per physical line, no quote parsing.

    Quote handling is off so that a stray quote cannot swallow the following lines: every
    physical line is one record, numbered exactly, and surrounding quotes are removed from each
    value afterwards (``clean_value``). Values therefore must not contain commas or line breaks,
    which the contract's values never do. Lines that do not split into the header's columns are
    stored in the temporary table ``rejects`` (line numbers and error types are all we keep).
    """
    columns = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    return (f"read_csv({sql_str(scan.path.as_posix())}, header = true, delim = ',', quote = '', "
            f"escape = '', auto_detect = false, columns = {columns}, store_rejects = true, "
            f"rejects_table = {sql_str(rejects)}, rejects_scan = {sql_str(rejects + '_scan')}, "
            f"max_line_size = {load_policy().max_line_bytes}, encoding = 'utf-8')")


def parse_into_temp(con: duckdb.DuckDBPyConnection, scan: FileScan, header: list[str]) -> None:
    """Parse the file into TEMP ``_incoming`` (cleaned text values, file order = rowid order).

    DuckDB reads the CSV in parallel and keeps the file's row order (``preserve_insertion_order``)
    so that ``rowid`` is the row's position in the file; the line numbering relies on it. The
    temporary table lives in memory (spilling to DuckDB's temp directory if it must), never in
    the warehouse, so a refused file leaves nothing behind.
    """
    if scan.quotes or scan.padding:
        cols = ", ".join(f"{clean_value(c)} AS {ident(c)}" for c in header)
    else:  # nothing to clean (the usual case): DuckDB already reads empty values as NULL
        cols = ", ".join(ident(c) for c in header)
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    if not ordered:
        con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(f"CREATE TEMP TABLE _incoming AS SELECT {cols} "
                    f"FROM {read_csv_sql(scan, header, '_rejects')}")
    finally:
        if not ordered:
            con.execute("SET preserve_insertion_order = false")


def _rejected(con: duckdb.DuckDBPyConnection, scan: FileScan, header: list[str],
              contract: TableContract, rejects: str) -> None:
    """TEMP ``_rejected``: one row per rejected line with rule id, reason and (safe) key.

    The line's text (DuckDB's ``csv_line``) is only used to pick out the record key, and only
    when it has the agreed pseudonymised format.
    """
    key = contract.column(contract.primary_key)
    pos = header.index(key.name) + 1
    field = f"trim(string_split(csv_line, ',')[{pos}], ' \"')"
    key_sql = (f"CASE WHEN regexp_full_match({field}, {sql_str(key.pattern)}) THEN {field} END"
               if key.pattern else "NULL")
    reasons = {TRUNCATED[0]: TRUNCATED[1], UNPARSEABLE[0]: UNPARSEABLE[1],
               **{rid: reason.format(max=load_policy().max_line_bytes)
                  for rid, reason in REJECT_RULES.values()}}
    cases = " ".join(f"WHEN list_contains(types, {sql_str(t)}) THEN {sql_str(rid)}"
                     for t, (rid, _) in REJECT_RULES.items())
    last = scan.lines if not scan.terminated else -1
    rule = (f"CASE WHEN line = {last} AND NOT list_contains(types, 'LINE SIZE OVER MAXIMUM') "
            f"THEN {sql_str(TRUNCATED[0])} {cases} ELSE {sql_str(UNPARSEABLE[0])} END")
    reason = "CASE rule_id " + " ".join(
        f"WHEN {sql_str(rid)} THEN {sql_str(text)}" for rid, text in reasons.items()) + " END"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rejected AS SELECT line, record_key, rule_id, "
        f"{reason} AS reason FROM (SELECT line, key AS record_key, {rule} AS rule_id "
        f"FROM (SELECT line, list(DISTINCT error_type::VARCHAR) AS types, "
        f"any_value({key_sql}) AS key FROM {rejects} GROUP BY line))")


def _line_numbering(con: duckdb.DuckDBPyConnection, scan: FileScan) -> bool:
    """Build TEMP ``_line_map`` (row order ``k`` -> physical line) if lines were skipped.

    Rows fill the physical lines that are neither the header, blank nor rejected, in order.
    Returns False when nothing was skipped (then line = k + 2 and no map is needed).
    """
    n_rejected = con.execute("SELECT count(*) FROM _rejected").fetchone()[0]
    if not scan.blank_lines and not n_rejected:
        return False
    con.execute("CREATE OR REPLACE TEMP TABLE _skipped (line BIGINT)")
    if scan.blank_lines:
        con.executemany("INSERT INTO _skipped VALUES (?)", [[b] for b in scan.blank_lines])
    con.execute("INSERT INTO _skipped SELECT line FROM _rejected")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _line_map AS SELECT row_number() OVER (ORDER BY range) "
        f"- 1 AS k, range AS line FROM range(2, {scan.lines + 1}) "
        "ANTI JOIN _skipped ON _skipped.line = range")
    return True


def _line_sql(mapped: bool) -> str:
    return "m.line" if mapped else "i.rowid + 2"


def _source(mapped: bool) -> str:
    return "_incoming i JOIN _line_map m ON m.k = i.rowid" if mapped else "_incoming i"


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW IF EXISTS _incoming_lines; " + "; ".join(
        f"DROP TABLE IF EXISTS {name}" for name in ("_incoming", "_rejects", "_rejects_scan",
                                                    "_rejected", "_skipped", "_line_map")))


def _check_counts(scan: FileScan, manifest: Manifest, contract: TableContract, rows: int,
                  rejected: int, top_reject: str | None) -> None:
    path = scan.path
    accounted = 1 + rows + rejected + len(scan.blank_lines)
    if accounted != scan.lines:
        raise ExtractError(f"{path}: {scan.lines} lines found but only {accounted} accounted "
                           "for (header, rows, blank and rejected lines); check the line "
                           "breaks and re-send")
    expected = manifest.files[contract.file].rows
    if rows + rejected != expected:
        blanks = (f"; the file also has {len(scan.blank_lines)} blank line(s), which are not "
                  "rows" if scan.blank_lines else "")
        raise ExtractError(f"{path}: {rows + rejected} data rows found but the manifest says "
                           f"{expected}{blanks}; re-send the file or correct the manifest")
    if expected == 0:
        raise ExtractError(f"{path}: the file has a header but no data rows; re-send the "
                           "extract")
    share = rejected / expected
    limit = load_policy().max_quarantine_share
    if share > limit:
        raise ExtractError(f"{path}: {rejected} of {expected} lines ({share:.1%}) cannot be "
                           f"split into the header's columns (mostly: {top_reject}); more than "
                           f"{limit:.0%}: check the delimiter is a comma and re-send")


def accepted_delivery_check(con: duckdb.DuckDBPyConnection, manifest: Manifest,
                            contract: TableContract, sha256: str) -> None:
    """Refuse a changed file (or extraction date) under an extract id already accepted.

    An extract is accepted once all its tables were staged; before that a re-delivery under
    the same id simply replaces the earlier, incomplete one.
    """
    row = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                      [manifest.extract_id]).fetchone()
    if row is None or not accepted(con, manifest.extract_id):
        return
    path = manifest.folder / contract.file
    if row[0] != manifest.extraction_date:
        raise ExtractError(f"{manifest.folder / 'manifest.json'}: extract "
                           f"{manifest.extract_id!r} was already loaded with extraction date "
                           f"{row[0]}; deliver changed data under a new extract id")
    prev = con.execute("SELECT sha256 FROM meta.loads WHERE extract_id = ? AND table_name = ?",
                       [manifest.extract_id, contract.table]).fetchone()
    if prev is not None and prev[0] != sha256:
        raise ExtractError(f"{path}: extract {manifest.extract_id!r} was already loaded with a "
                           f"different {contract.file} (SHA-256 {prev[0][:12]}...); deliver "
                           "changed data under a new extract id")


def register_extract(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
    """Record the extract (id, extraction date, content fingerprint); keep the first load time."""
    con.execute(
        "INSERT INTO meta.extracts VALUES (?, ?, ?, ?, ?) ON CONFLICT (extract_id) DO UPDATE "
        "SET extraction_date = excluded.extraction_date, provider = excluded.provider, "
        "fingerprint = excluded.fingerprint",
        [manifest.extract_id, manifest.extraction_date, manifest.provider,
         manifest.fingerprint, dt.datetime.now(dt.UTC).replace(tzinfo=None)])


def load_raw(con: duckdb.DuckDBPyConnection, manifest: Manifest,
             contract: TableContract) -> LoadCounts:
    """Verify one delivered file and load its rows, as text with line numbers, into raw.

    The file is parsed twice, both times streamed: first to count rows, collect rejected lines
    and run the identifier guard (nothing is stored), then, only if all is well, straight into
    ``raw.<table>``. That costs one extra parse but never holds the file in memory.
    """
    ensure_schemas(con)
    scan = scan_delivered(manifest, contract.file)
    header = _check_header(scan, contract)
    accepted_delivery_check(con, manifest, contract, scan.sha256)
    try:
        _drop_temp(con)
        parse_into_temp(con, scan, header)
        _rejected(con, scan, header, contract, "_rejects")
        rows = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
        rejected, top = con.execute("SELECT count(*), mode(reason) FROM _rejected").fetchone()
        if scan.lines > 1 + rows + rejected:  # DuckDB skipped blank lines: find where
            scan = replace(scan, blank_lines=blank_line_numbers(scan.path))
        _check_counts(scan, manifest, contract, rows, rejected, top)
        mapped = _line_numbering(con, scan)
        con.execute(f"CREATE TEMP VIEW _incoming_lines AS SELECT {_line_sql(mapped)} AS _line, "
                    f"i.* FROM {_source(mapped)}")
        refuse_identifier_values(con, "_incoming_lines", scan.path, contract, header,
                                 manifest.extraction_date.year)
        _write(con, manifest, contract, scan, rows, rejected)
    except duckdb.Error as exc:
        raise ExtractError(f"{scan.path}: the file could not be read as CSV "
                           f"({type(exc).__name__}); check it is comma-separated UTF-8 text "
                           "with one header line") from None
    finally:
        _drop_temp(con)
    return LoadCounts(contract.table, manifest.files[contract.file].rows, rows, rejected,
                      len(scan.blank_lines))


def _write(con: duckdb.DuckDBPyConnection, manifest: Manifest, contract: TableContract,
           scan: FileScan, rows: int, rejected: int) -> None:
    """Write the rows, rejected lines and load record in one transaction."""
    eid, table = manifest.extract_id, contract.table
    cols = ", ".join(ident(c) for c in contract.column_names)
    con.execute("BEGIN TRANSACTION")
    try:
        register_extract(con, manifest)
        con.execute(raw_ddl(contract))
        replace_partition(con, f"raw.{table}", eid, "_extract_id")
        con.execute(f"INSERT INTO raw.{table} (_extract_id, _line, {cols}) "
                    f"SELECT ?, _line, {stored_columns(contract)} FROM _incoming_lines", [eid])
        delete_table_rows(con, "quarantine.rejected_lines", eid, table)
        con.execute("INSERT INTO quarantine.rejected_lines SELECT ?, ?, line, record_key, "
                    "rule_id, reason FROM _rejected", [eid, table])
        delete_table_rows(con, "meta.loads", eid, table)
        con.execute(
            "INSERT INTO meta.loads (extract_id, table_name, file_name, sha256, manifest_rows, "
            "raw_rows, rejected_lines, loaded_at, blank_lines, notes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [eid, table, contract.file, scan.sha256, manifest.files[contract.file].rows, rows,
             rejected, dt.datetime.now(dt.UTC).replace(tzinfo=None), len(scan.blank_lines),
             "; ".join(scan.notes) or None])
        # the table's earlier staging result no longer describes these raw rows
        delete_table_rows(con, "meta.stages", eid, table)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def extraction_date(con: duckdb.DuckDBPyConnection, extract_id: str) -> dt.date:
    """The extraction date recorded for a loaded extract."""
    ensure_schemas(con)
    row = con.execute("SELECT extraction_date FROM meta.extracts WHERE extract_id = ?",
                      [extract_id]).fetchone()
    if row is None:
        raise ExtractError(f"extract {extract_id!r} has not been loaded; materialise its raw "
                           "tables first")
    return row[0]


def load_extract(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> dict[str, LoadCounts]:
    """Load every table of an extract (convenience for tools and benchmarks)."""
    from pipeline.contracts.schema import EXTRACT_TABLES

    return {t: load_raw(con, manifest, load_contract(t)) for t in EXTRACT_TABLES}
