"""Identifier guard: refuse a file that carries direct identifiers before any of it is stored.

Two checks, both driven by ``data_contracts/identifiers.yaml``: header names that look like
identifier columns, and values that look like identifiers (names, dates of birth, addresses,
postcodes, PNC/NHS/NI numbers, e-mail addresses, phone numbers) or that should be pseudonymised
keys but are not. Every value of every column is screened, case-insensitively: a value that meets
its column's contract (agreed key format, listed or lookup code, YYYY-MM-DD date, whole number,
true/false) cannot carry an identifier, so the patterns run on all other values, coded, lookup
and date columns included. The error names the file, column, kind, number of rows and first
line: never the value.

Two gaps the patterns leave are closed here as well (issue 12):
* a full date of birth written as a valid YYYY-MM-DD date in a date column (date of death,
  referral date) meets the column's contract. It is refused as a date of birth when it lies
  within ``min_age`` years of the same row's birth year (``birth_year`` rule), or, in a table
  whose dates are not a lifetime history (no ``not_before_year`` parent-date rule, i.e. not
  the offence history), when it lies ``date_columns_min_years`` or more before the extraction
  year;
* a value that breaks its column's contract without looking like an identifier (a single word
  such as a surname in a coded column) is quarantined at staging; ``stored_columns`` makes
  ``raw.*`` keep a marker instead of the value, so that it is never stored. The marker breaks
  the same contract, so staging quarantines the row as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.contracts.rules import FORMULA_STARTS, conforms, ident, sql_str
from pipeline.contracts.schema import (
    ColumnSpec,
    IdentifierRules,
    TableContract,
    load_identifier_rules,
    load_policy,
    load_rulebook,
)
from pipeline.ingest.errors import ExtractError

NOT_PSEUDONYMISED = "values that are not pseudonymised keys of the agreed format"
FIX = ("nothing of the file was stored; remove direct identifiers and pseudonymise keys "
       "(python -m pipeline.provider_tools pseudonymise), then re-send")


@dataclass(frozen=True)
class Finding:
    """Where identifier-like values were found: column, kind, how many rows, first line."""

    column: str
    kind: str
    rows: int
    first_line: int

    def describe(self) -> str:
        return (f"column {self.column!r} holds {self.kind} ({self.rows} row(s), first at line "
                f"{self.first_line})")


def normalise_name(name: str) -> str:
    """Header name in lower case with spaces and punctuation as underscores."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def identifier_columns(header: list[str], contract: TableContract,
                       rules: IdentifierRules | None = None) -> list[tuple[str, str]]:
    """(column, kind) for header columns outside the contract whose name looks like one."""
    rules = rules or load_identifier_rules()
    found = []
    for name in header:
        if name in contract.column_names:
            continue
        norm = normalise_name(name)
        for pat in rules.column_names:
            if re.search(pat.pattern, norm):
                found.append((name, pat.kind))
                break
    return found


# a header cell quoted back: a lower-case column name, or any-case when named like an
# identifier column (``DOB``); anything else may be a value and is named by position
PLAIN_NAME = re.compile(r"[a-z][a-z0-9_ ]{0,63}")
PLAIN_COLUMN_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_ ]{0,63}")


def header_label(header: list[str], position: int, contract: TableContract,
                 rules: IdentifierRules | None = None, column_like: bool = False) -> str:
    """How a message names header cell ``position`` (0-based) without echoing a value.

    A contract column is named. Any other cell is quoted only when it looks like no
    identifier value, line 1 is recognisably a header (at least half of the contract's
    columns are in it) and the cell is a lower-case name, or ``column_like`` (named like an
    identifier column, e.g. ``DOB``); otherwise (a file sent without its header line, a
    system file) it is named by its position alone.
    """
    name = header[position]
    if name in contract.column_names:
        return repr(name)
    rules = rules or load_identifier_rules()
    header_line = 2 * sum(c in contract.column_names for c in header) >= len(contract.columns)
    shape = PLAIN_COLUMN_LIKE if column_like else PLAIN_NAME
    plain = (shape.fullmatch(name) is not None
             and not any(re.search(p.pattern, name) for p in rules.values))
    # only a recognisable header line is quoted: without one, line 1 is data, and a value
    # that merely looks like a column name ("Zipporah" ~ zip) must not be echoed
    return repr(name) if plain and header_line else f"{position + 1} of the header"


def refuse_identifier_columns(path: Path, header: list[str], contract: TableContract) -> None:
    """Raise if the header names a direct-identifier column (named as ``header_label`` says)."""
    found = identifier_columns(header, contract)
    if found:
        labels = [header_label(header, header.index(c), contract, column_like=True)
                  for c, _ in found]
        cols = "; ".join(f"column {label} looks like {kind}"
                         for label, (_, kind) in zip(labels, found, strict=True))
        raise ExtractError(f"{path}: refused by the identifier guard: {cols}; {FIX}")


def _odd(col: ColumnSpec, max_len: int) -> str:
    """SQL: the column's text when it does not meet the contract, else NULL.

    The relation's values are already cleaned (no quotes or surrounding spaces, empty = NULL).
    """
    t = ident(col.name)
    if col.pseudonymised:  # a key column must hold keys of the agreed format, nothing else
        return f"CASE WHEN NOT regexp_full_match({t}, {sql_str(col.pattern)}) THEN {t} END"
    # NULL from ``conforms`` (a NULL value) stays NULL: nothing to scan
    return f"CASE WHEN NOT {conforms(col, t, max_len)} THEN {t} END"


def _old_enough(odd: str, min_years: int, extraction_year: int | None) -> str:
    """SQL: the date-like text lies ``min_years`` or more before the extraction year (or its
    year cannot be told, e.g. written with two digits): it could be a date of birth."""
    if extraction_year is None:
        return "TRUE"
    year = f"TRY_CAST(NULLIF(regexp_extract({odd}, '[0-9]{{4}}'), '') AS INTEGER)"
    return f"coalesce({year} <= {extraction_year - min_years}, TRUE)"


def value_checks(contract: TableContract, present: list[str],
                 rules: IdentifierRules | None = None,
                 extraction_year: int | None = None) -> list[tuple[str, str, str]]:
    """(column, kind, SQL predicate over the column's non-conforming text ``"<column>$odd"``).

    Every pattern applies to every column; in a date column a pattern with
    ``date_columns_min_years`` only fires for dates that old before the extraction year.
    """
    rules = rules or load_identifier_rules()
    checks = []
    for col in contract.columns:
        if col.name not in present:
            continue
        odd = ident(f"{col.name}$odd")
        if col.pseudonymised:
            checks.append((col.name, NOT_PSEUDONYMISED, f"{odd} IS NOT NULL"))
        for pat in rules.values:
            if pat.skip_allowed_columns and col.allowed:
                continue
            pred = f"regexp_matches({odd}, {sql_str(pat.pattern)})"
            if pat.date_columns_min_years is not None and col.type == "DATE":
                pred += f" AND {_old_enough(odd, pat.date_columns_min_years, extraction_year)}"
            checks.append((col.name, pat.kind, pred))
    return checks


def misfit_sql(contract: TableContract, present: list[str]) -> tuple[str, str]:
    """(select list, filter) picking each value that does not meet the contract.

    The select list gives ``"<column>$odd"`` per column (the trimmed text, or NULL when the
    value conforms); the filter keeps rows with at least one such value. A clean file yields
    no rows, so the identifier patterns below never run on it.
    """
    cols = [c for c in contract.columns if c.name in present]
    max_len = load_policy().max_text_length
    select = ", ".join(f"{_odd(c, max_len)} AS {ident(c.name + '$odd')}" for c in cols)
    where = " OR ".join(f"{ident(c.name + '$odd')} IS NOT NULL" for c in cols)
    return select or "NULL AS _none", where or "FALSE"


def find_identifiers(con: duckdb.DuckDBPyConnection, misfits: str, contract: TableContract,
                     present: list[str], order_col: str = "_line",
                     extraction_year: int | None = None) -> list[Finding]:
    """Identifier-like values per column and kind among the rows of ``misfits``.

    ``misfits`` is a relation with ``order_col`` and the ``"<column>$odd"`` columns of
    ``misfit_sql``. Returns findings whose ``first_line`` is the smallest ``order_col``.
    """
    checks = value_checks(contract, present, extraction_year=extraction_year)
    if not checks or not con.execute(f"SELECT count(*) FROM {misfits}").fetchone()[0]:
        return []
    aggs = ", ".join(
        f"count(*) FILTER (WHERE {pred}), min({ident(order_col)}) FILTER (WHERE {pred})"
        for _, _, pred in checks)
    row = con.execute(f"SELECT {aggs} FROM {misfits}").fetchall()[0]
    found = []
    for i, (column, kind, _) in enumerate(checks):
        n, first = row[2 * i], row[2 * i + 1]
        if n:
            found.append(Finding(column, kind, int(n), int(first)))
    return found


def refuse(path: Path, found: list[Finding]) -> None:
    """Raise the guard's one-line error (file, columns, kinds, counts, first lines; no values)."""
    if found:
        detail = "; ".join(f.describe() for f in found[:4])
        more = f" and {len(found) - 4} more" if len(found) > 4 else ""
        raise ExtractError(f"{path}: refused by the identifier guard: {detail}{more}; {FIX}")


DOB_KIND = "full dates of birth"
WITHHELD = "#"  # stored instead of a value that breaks its column's contract


def _iso_date(text_sql: str) -> str:
    return f"TRY_CAST(CASE WHEN regexp_full_match({text_sql}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "\
        f"THEN {text_sql} END AS DATE)"


def birth_date_checks(contract: TableContract, present: list[str],
                      extraction_year: int | None = None,
                      rules: IdentifierRules | None = None) -> list[tuple[str, str]]:
    """(date column, SQL predicate over the cleaned text columns) finding valid YYYY-MM-DD dates
    that are dates of birth (module docstring): near the row's birth year, or old in a table
    whose dates are no lifetime history."""
    rules = rules or load_identifier_rules()
    book = load_rulebook().for_table(contract.table)
    dates = [c.name for c in contract.columns if c.type == "DATE" and c.name in present]
    checks: dict[str, list[str]] = {d: [] for d in dates}
    for by in book.birth_year:
        if by.column not in present:
            continue
        born = f"TRY_CAST({ident(by.column)} AS INTEGER)"
        for d in dates:
            checks[d].append(f"year({_iso_date(ident(d))}) - {born} < {by.min_age}")
    history = any(r.check == "not_before_year" for r in book.parent_dates)
    years = [p.date_columns_min_years for p in rules.values
             if p.kind == DOB_KIND and p.date_columns_min_years is not None]
    if extraction_year is not None and years and not history:
        for d in dates:
            checks[d].append(f"year({_iso_date(ident(d))}) <= {extraction_year - min(years)}")
    return [(d, "coalesce(" + " OR ".join(preds) + ", FALSE)")
            for d, preds in checks.items() if preds]


def find_birth_dates(con: duckdb.DuckDBPyConnection, relation: str, contract: TableContract,
                     present: list[str], extraction_year: int | None = None,
                     order_col: str = "_line") -> list[Finding]:
    """Findings for the dates of birth written as valid dates (``birth_date_checks``)."""
    checks = birth_date_checks(contract, present, extraction_year)
    if not checks:
        return []
    aggs = ", ".join(f"count(*) FILTER (WHERE {pred}), min({ident(order_col)}) "
                     f"FILTER (WHERE {pred})" for _, pred in checks)
    row = con.execute(f"SELECT {aggs} FROM {relation}").fetchall()[0]
    return [Finding(column, DOB_KIND, int(row[2 * i]), int(row[2 * i + 1]))
            for i, (column, _) in enumerate(checks) if row[2 * i]]


def _withheld_marker(col: ColumnSpec, max_len: int) -> str:
    """A stand-in that breaks the column's contract just as the withheld value did."""
    if col.type != "VARCHAR" or col.allowed or col.pattern or col.lookup:
        if not (col.pattern and re.search(col.pattern, WITHHELD)) and WITHHELD not in (
                col.allowed or ()):
            return WITHHELD
    return WITHHELD * ((col.max_length or max_len) + 1)  # too long for the column


def stored_columns(contract: TableContract) -> str:
    """Select list writing ``raw.<table>``: each value as delivered when it meets its column's
    contract, else a marker that breaks the contract too (so staging still quarantines the
    row) -- a value that breaks the contract is never stored (it may be a name)."""
    max_len = load_policy().max_text_length

    def marker(c: ColumnSpec) -> str:
        # a key keeps one marker per line (the marker plus the file line number, neither of
        # them data): identical markers would read as duplicated keys and refuse the file
        if c.unique or c.name == contract.primary_key:
            return f"({sql_str(WITHHELD)} || _line::VARCHAR)"
        base = sql_str(_withheld_marker(c, max_len))
        if c.type != "VARCHAR":
            return base
        # the screening rules of text (quote, formula, length) name what the provider must
        # fix: a marker that breaks the same one keeps the quarantine reason exact
        t, starts = ident(c.name), "".join(FORMULA_STARTS)
        return (f"(CASE WHEN contains({t}, '\"') THEN '\"{WITHHELD}' "
                f"WHEN contains({sql_str(starts)} || chr(9) || chr(13), left({t}, 1)) "
                f"THEN '={WITHHELD}' "
                f"WHEN length({t}) > {c.max_length or max_len} THEN "
                f"{sql_str(WITHHELD * ((c.max_length or max_len) + 1))} ELSE {base} END)")

    return ", ".join(
        f"CASE WHEN ({_odd(c, max_len)}) IS NOT NULL THEN "
        f"{marker(c)} ELSE {ident(c.name)} END AS {ident(c.name)}"
        for c in contract.columns)


def refuse_identifier_values(con: duckdb.DuckDBPyConnection, relation: str, path: Path,
                             contract: TableContract, present: list[str],
                             extraction_year: int | None = None) -> None:
    """Raise if ``relation`` (cleaned file columns as text plus ``_line``) holds identifiers.

    The misfits go to a temporary table (in memory, dropped at once) so the file is scanned
    only once.
    """
    select, where = misfit_sql(contract, present)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _misfits AS SELECT _line, {select} "
                f"FROM {relation} WHERE {where}")
    try:
        found = find_identifiers(con, "_misfits", contract, present,
                                 extraction_year=extraction_year)
        found += find_birth_dates(con, relation, contract, present, extraction_year)
    finally:
        con.execute("DROP TABLE IF EXISTS _misfits")
    refuse(path, found)
