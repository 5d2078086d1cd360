"""Row-level rules generated from a table contract, as SQL predicates over the raw (text) columns.

Each rule says which rows break it (``violation``, SQL over ``raw`` text and ``typed`` values) and
gives a reason a data manager understands. Quarantine and the provider specification use them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.contracts.schema import ColumnSpec, TableContract, load_offence_codes

DATE_FORMAT = "%Y-%m-%d"


@dataclass(frozen=True)
class RowRule:
    """One checkable row-level rule; ``violation`` is a SQL boolean over raw/typed columns."""

    rule_id: str
    column: str
    violation: str
    reason: str


def ident(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """Quote a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def raw_text(col: ColumnSpec) -> str:
    """The delivered text of a column with surrounding blanks removed; empty text is NULL."""
    return f"NULLIF(trim(r.{ident(col.name)}), '')"


def typed_expr(col: ColumnSpec) -> str:
    """SQL that turns a raw text column into its contract type, NULL where it cannot."""
    raw = raw_text(col)
    if col.type == "DATE":
        return f"CAST(TRY_STRPTIME({raw}, '{DATE_FORMAT}') AS DATE)"
    if col.type == "BOOLEAN":
        return f"CASE lower({raw}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
    return f"TRY_CAST({raw} AS {col.type})"


def type_description(col: ColumnSpec) -> str:
    return {"DATE": "a date written YYYY-MM-DD", "BOOLEAN": "true or false",
            "INTEGER": "a whole number", "BIGINT": "a whole number",
            "DOUBLE": "a number", "VARCHAR": "text"}[col.type]


def column_rules(table: str, col: ColumnSpec) -> list[RowRule]:
    """The rules one column's contract implies, in a fixed order."""
    raw, typed = raw_text(col), typed_expr(col)
    rid = f"{table}.{col.name}"
    rules = []
    if col.required:
        rules.append(RowRule(f"{rid}.required", col.name, f"{raw} IS NULL",
                             f"{col.name} is required but empty"))
    if col.type != "VARCHAR":
        rules.append(RowRule(f"{rid}.type", col.name, f"{raw} IS NOT NULL AND {typed} IS NULL",
                             f"{col.name} must be {type_description(col)}"))
    if col.allowed:
        values = ", ".join(sql_str(v) for v in col.allowed)
        rules.append(RowRule(f"{rid}.allowed", col.name, f"{raw} NOT IN ({values})",
                             f"{col.name} must be one of: {', '.join(col.allowed)}"))
    if col.pattern:
        rules.append(RowRule(f"{rid}.format", col.name,
                             f"NOT regexp_full_match({raw}, {sql_str(col.pattern)})",
                             f"{col.name} must match the agreed format {col.pattern}"))
    if col.min is not None or col.max is not None:
        lo = f"{typed} < {col.min}" if col.min is not None else "FALSE"
        hi = f"{typed} > {col.max}" if col.max is not None else "FALSE"
        rules.append(RowRule(f"{rid}.range", col.name, f"({lo} OR {hi})",
                             f"{col.name} must lie between {col.min} and {col.max}"))
    if col.lookup == "offence_codes.code":
        codes = ", ".join(sql_str(c.code) for c in load_offence_codes())
        rules.append(RowRule(f"{rid}.lookup", col.name, f"{raw} NOT IN ({codes})",
                             f"{col.name} must be a code from the offence-code lookup"))
    return rules


def table_rules(contract: TableContract) -> list[RowRule]:
    """All row-level rules of a table, column by column in contract order."""
    return [r for col in contract.columns for r in column_rules(contract.table, col)]
