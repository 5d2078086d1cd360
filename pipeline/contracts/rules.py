"""Row rules generated from the contracts, as one set-based SQL query per table.

Every rule is a SQL predicate that is true for a row that breaks it, with a rule id and a reason
a data manager understands. Reasons are fixed texts: they name columns and rules, never values.
``check_query`` puts all of a table's rules into one scan of ``raw.<table>`` that yields each
row's typed values and the list of rules it breaks (``_hits``), so staging and quarantine are
two cheap selections from the same result instead of one scan per rule.

Names inside the query: ``"c"`` is column c in its contract type and ``"c$t"`` its delivered
text (as stored in ``raw``: without CSV quotes and surrounding spaces, NULL when empty).
Parameters: ``$eid`` (extract id) and ``$xdate`` (extraction date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.contracts.schema import (
    ColumnSpec,
    Policy,
    RuleBook,
    TableContract,
    load_contract,
    load_offence_codes,
    load_policy,
    load_rulebook,
)

DATE_FORMAT = "%Y-%m-%d"
# the delivered text must have exactly this shape before it is cast (DuckDB's casts are lenient:
# they would accept 1985.4 as an integer or 2020/01/05 as a date)
TYPE_SHAPES = {
    "DATE": "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "INTEGER": "[+-]?[0-9]{1,9}",
    "BIGINT": "[+-]?[0-9]{1,18}",
    "DOUBLE": "[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?",
}
FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass(frozen=True)
class RowRule:
    """One checkable row rule; ``violation`` is a SQL boolean over the check query's names."""

    rule_id: str
    column: str
    violation: str
    reason: str
    kind: str = "column"
    # False when another rule of the same column always fires too (e.g. a formula in a coded
    # column also breaks its allowed-values rule): such rules are skipped in the cheap
    # first screen of every row and only evaluated for rows that fail it
    screen: bool = True


@dataclass
class CheckPlan:
    """Everything one table's check query needs: its rules plus the CTEs and joins they use."""

    contract: TableContract
    rules: list[RowRule] = field(default_factory=list)
    ctes: dict[str, str] = field(default_factory=dict)
    joins: list[str] = field(default_factory=list)
    # alias -> (parent table, parent key column, parent columns the rules need, from raw)
    parents: dict[str, tuple[str, str, list[str], bool]] = field(default_factory=dict)


def ident(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """Quote a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    return ", ".join(sql_str(v) for v in values)


def in_list(expr: str, values, negate: bool = False) -> str:
    """``expr [NOT] IN (values)`` as a scalar test (DuckDB plans a long IN list as a join over
    every row, which is slower here); NULL stays NULL."""
    test = f"list_contains([{sql_list(values)}], {expr})"
    return f"NOT {test}" if negate else test


def txt(name: str) -> str:
    """The trimmed delivered text of a column inside the check query (NULL when empty)."""
    return ident(f"{name}$t")


def raw_text(col: ColumnSpec, alias: str = "r") -> str:
    """The delivered text of a column of ``raw.<table>`` trimmed; empty text is NULL."""
    return f"NULLIF(trim({alias}.{ident(col.name)}), '')"


def cast_text(col: ColumnSpec, text_sql: str) -> str:
    """SQL turning trimmed text into the column's contract type; NULL where it is not valid."""
    if col.type == "VARCHAR":
        return text_sql
    if col.type == "BOOLEAN":
        return f"CASE lower({text_sql}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
    shape = sql_str(TYPE_SHAPES[col.type])
    return (f"CASE WHEN regexp_full_match({text_sql}, {shape}) "
            f"THEN TRY_CAST({text_sql} AS {col.type}) END")


def typed_expr(col: ColumnSpec, alias: str = "r") -> str:
    """SQL that turns a column of ``raw.<table>`` into its contract type, NULL where invalid."""
    return cast_text(col, raw_text(col, alias))


def conforms(col: ColumnSpec, text_sql: str, max_text_length: int = 100) -> str:
    """SQL true when a non-empty text meets the column's type, allowed values and format.

    The identifier guard only looks for identifiers among values that do not conform.
    """
    parts = []
    if col.type == "VARCHAR":
        parts.append(f"length({text_sql}) <= {col.max_length or max_text_length}")
    elif col.type == "BOOLEAN":
        parts.append(in_list(f"lower({text_sql})", ("true", "false")))
    else:
        parts.append(f"regexp_full_match({text_sql}, {sql_str(TYPE_SHAPES[col.type])})")
    if col.allowed:
        parts.append(in_list(text_sql, col.allowed))
    if col.pattern:
        parts.append(f"regexp_full_match({text_sql}, {sql_str(col.pattern)})")
    if col.lookup:
        parts.append(in_list(text_sql, lookup_values(col)))
    return "(" + " AND ".join(parts) + ")"


def lookup_values(col: ColumnSpec) -> list[str]:
    """The codes a lookup-coded column may hold."""
    if col.lookup == "offence_codes.code":
        return [c.code for c in load_offence_codes()]
    raise ValueError(f"column {col.name}: unknown lookup {col.lookup}")


def type_description(col: ColumnSpec) -> str:
    return {"DATE": "a date written YYYY-MM-DD", "BOOLEAN": "true or false",
            "INTEGER": "a whole number", "BIGINT": "a whole number",
            "DOUBLE": "a number", "VARCHAR": "text"}[col.type]


def key_sql(contract: TableContract) -> str:
    """The row's primary key, only when it has the agreed format (never echo anything else)."""
    key = contract.column(contract.primary_key)
    if not key.pattern:
        return "NULL"
    return (f"CASE WHEN regexp_full_match({txt(key.name)}, {sql_str(key.pattern)}) "
            f"THEN {txt(key.name)} END")


def _format_ok(col: ColumnSpec) -> str:
    if not col.pattern:
        return "TRUE"
    return f"regexp_full_match({txt(col.name)}, {sql_str(col.pattern)})"


def _text_rules_implied(col: ColumnSpec, max_len: int) -> bool:
    """True when every value meeting the column's type, allowed values or format is free of
    quotes, formula starts and excess length, so that those rules never fire alone."""
    if col.type != "VARCHAR":
        return True
    if col.allowed:
        return all('"' not in v and not v.startswith(FORMULA_STARTS) and len(v) <= max_len
                   for v in col.allowed)
    if col.pattern:
        bounded = not re.search(r"(?<!\\)[*+]|\{\d+,\}", col.pattern)
        return (bool(re.match(r"\^[A-Za-z0-9]", col.pattern)) and '"' not in col.pattern
                and bounded)
    return False


def column_rules(table: str, col: ColumnSpec, policy: Policy) -> list[RowRule]:
    """The rules one column's contract implies, in a fixed order."""
    t, v = txt(col.name), ident(col.name)
    rid = f"{table}.{col.name}"
    name = col.name
    max_len = col.max_length or policy.max_text_length
    screen = not _text_rules_implied(col, max_len)
    rules = []
    if col.required:
        rules.append(RowRule(f"{rid}.required", name, f"{t} IS NULL",
                             f"{name} is required but empty"))
    rules.append(RowRule(f"{rid}.quote", name, f"contains({t}, '\"')",
                         f"{name} contains a stray double quote; values must not contain \"",
                         screen=screen))
    if col.type == "VARCHAR":
        rules.append(RowRule(
            f"{rid}.formula", name,
            f"contains({sql_str(''.join(FORMULA_STARTS))} || chr(9) || chr(13), left({t}, 1))",
            f"{name} starts with =, +, -, @, a tab or a carriage return, which a spreadsheet "
            "would run as a formula; send the plain value", screen=screen))
        rules.append(RowRule(f"{rid}.length", name, f"length({t}) > {max_len}",
                             f"{name} is longer than {max_len} characters", screen=screen))
    else:
        rules.append(RowRule(f"{rid}.type", name, f"{t} IS NOT NULL AND {v} IS NULL",
                             f"{name} must be {type_description(col)}"))
    if col.allowed:
        rules.append(RowRule(f"{rid}.allowed", name, in_list(t, col.allowed, negate=True),
                             f"{name} must be one of: {', '.join(col.allowed)}"))
    if col.pattern:
        rules.append(RowRule(f"{rid}.format", name, f"NOT {_format_ok(col)}",
                             f"{name} must match the agreed format {col.pattern}"))
    if col.min is not None or col.max is not None:
        lo = f"{v} < {col.min}" if col.min is not None else "FALSE"
        hi = f"{v} > {col.max}" if col.max is not None else "FALSE"
        rules.append(RowRule(f"{rid}.range", name, f"({lo} OR {hi})",
                             f"{name} must lie between {col.min} and {col.max}"))
    if col.lookup:
        rules.append(RowRule(f"{rid}.lookup", name, in_list(t, lookup_values(col), negate=True),
                             f"{name} must be a code from the offence-code lookup"))
    return rules


def _unique_rules(plan: CheckPlan) -> None:
    for col in plan.contract.columns:
        if not col.unique:
            continue
        cte = f"dup${col.name}"
        plan.ctes[cte] = (f"SELECT {ident(col.name)} AS k FROM raw.{plan.contract.table} WHERE "
                          f"_extract_id = $eid AND {ident(col.name)} IS NOT NULL GROUP BY 1 "
                          "HAVING count(*) > 1")
        plan.joins.append(f"LEFT JOIN {ident(cte)} ON {ident(cte)}.k = typed.{txt(col.name)}")
        plan.rules.append(RowRule(
            f"{plan.contract.table}.{col.name}.unique", col.name,
            f"{ident(cte)}.k IS NOT NULL",
            f"{col.name} appears on more than one line; every row needs its own {col.name}",
            kind="unique"))


def _parent_join(plan: CheckPlan, key: str, parent: str, parent_key: str,
                 extra: tuple[str, ...] = (), from_raw: bool = False) -> str:
    """Join this extract's parent rows on ``key`` (once per key column); return the alias.

    The joined relation has ``k`` (the parent key), ``staged`` (the parent row passed its own
    rules) and the parent's ``extra`` columns as ``"p$<column>"``. With ``from_raw`` it lists
    every parent key delivered, staged or not, so that a missing parent and a quarantined one
    can be told apart.
    """
    alias = f"par${key}"
    if alias not in plan.parents:
        plan.parents[alias] = (parent, parent_key, [], from_raw)
        plan.joins.append(f"LEFT JOIN {ident(alias)} ON {ident(alias)}.k = typed.{txt(key)}")
    entry = plan.parents[alias]
    entry[2].extend(c for c in extra if c not in entry[2])
    if from_raw and not entry[3]:
        plan.parents[alias] = (entry[0], entry[1], entry[2], True)
    return alias


def parent_cte(parent: str, parent_key: str, extra: list[str], from_raw: bool) -> str:
    """SQL of one parent join relation (see ``_parent_join``)."""
    cols = "".join(f", {ident(c)} AS {ident('p$' + c)}" for c in extra)
    staged = (f"SELECT {ident(parent_key)} AS k{cols} FROM staging.{parent} "
              "WHERE _extract_id = $eid")
    if not from_raw:
        return f"SELECT *, TRUE AS staged FROM ({staged})"
    picked = "".join(f", s.{ident('p$' + c)}" for c in extra)
    return (f"SELECT r.k, s.k IS NOT NULL AS staged{picked} FROM (SELECT DISTINCT "
            f"{ident(parent_key)} AS k FROM raw.{parent} WHERE _extract_id = $eid AND "
            f"{ident(parent_key)} IS NOT NULL) r LEFT JOIN ({staged}) s ON s.k = r.k")


def _reference_rules(plan: CheckPlan) -> None:
    table = plan.contract.table
    for col in plan.contract.columns:
        if not col.parent:
            continue
        parent, parent_key = col.parent
        parent_file = load_contract(parent).file
        par = ident(_parent_join(plan, col.name, parent, parent_key, from_raw=True))
        hint = (" (both providers must pseudonymise with the same shared key)"
                if col.pseudonymised else "")
        plan.rules.append(RowRule(
            f"{table}.{col.name}.references", col.name,
            f"{txt(col.name)} IS NOT NULL AND {_format_ok(col)} AND {par}.k IS NULL",
            f"{col.name} does not match any {parent_key} in {parent_file}{hint}",
            kind="cross_table"))
        plan.rules.append(RowRule(
            f"{table}.{col.name}.parent_quarantined", col.name,
            f"{par}.k IS NOT NULL AND NOT {par}.staged",
            f"the {parent_file} row with this {col.name} was quarantined; fix that row and "
            "this one will load too", kind="cross_table"))


def date_order_pairs(columns: tuple[str, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(earlier, later, between) for every pair of a chain; a pair is checked only when the
    dates between are empty, so one wrong date breaks one rule, not several."""
    return [(columns[i], columns[j], columns[i + 1:j])
            for i in range(len(columns)) for j in range(i + 1, len(columns))]


def _within_row_rules(plan: CheckPlan, book: RuleBook) -> None:
    table = plan.contract.table
    for order in book.date_order:
        for a, b, between in date_order_pairs(order.columns):
            gaps = "".join(f" AND {ident(c)} IS NULL" for c in between)
            plan.rules.append(RowRule(
                f"{table}.{b}.not_before_{a}", b, f"{ident(b)} < {ident(a)}{gaps}",
                f"{b} is earlier than {a}", kind="within_row"))
    for cond in book.conditional:
        when_col = plan.contract.column(cond.when)
        values = ", ".join(cond.values)
        if cond.required:
            plan.rules.append(RowRule(
                f"{table}.{cond.column}.required_when", cond.column,
                f"{in_list(txt(cond.when), cond.values)} AND {txt(cond.column)} IS NULL",
                f"{cond.column} is required when {cond.when} is one of: {values}",
                kind="within_row"))
        if cond.otherwise_empty:
            plan.rules.append(RowRule(
                f"{table}.{cond.column}.empty_unless", cond.column,
                f"{txt(cond.column)} IS NOT NULL AND ({txt(cond.when)} IS NULL OR "
                f"({in_list(txt(cond.when), when_col.allowed or ())} AND "
                f"{in_list(txt(cond.when), cond.values, negate=True)}))",
                f"{cond.column} must be empty unless {cond.when} is one of: {values}",
                kind="within_row"))


def _cross_rules(plan: CheckPlan, book: RuleBook) -> None:
    table = plan.contract.table
    for wp in book.within_parent:
        parent_key = wp.key
        a = ident(_parent_join(plan, wp.key, wp.parent, parent_key, (wp.start, wp.end)))
        plan.rules.append(RowRule(
            f"{table}.{wp.column}.within_parent", wp.column,
            f"{a}.staged AND ({ident(wp.column)} < {a}.{ident('p$' + wp.start)} OR "
            f"{ident(wp.column)} > coalesce({a}.{ident('p$' + wp.end)}, $xdate))",
            f"{wp.column} lies outside its {load_contract(wp.parent).file} row's period "
            f"({wp.start} to {wp.end}, or to the extraction date while {wp.end} is empty)",
            kind="cross_table"))
    if book.not_after_extraction:
        for col in plan.contract.columns:
            if col.type == "DATE":
                plan.rules.append(RowRule(
                    f"{table}.{col.name}.not_after_extraction", col.name,
                    f"{ident(col.name)} > $xdate", f"{col.name} is after the extraction date",
                    kind="within_row"))
    for by in book.birth_year:
        c = ident(by.column)
        plan.rules.append(RowRule(
            f"{table}.{by.column}.plausible", by.column,
            f"({c} > year($xdate) - {by.min_age} OR {c} < year($xdate) - {by.max_age})",
            f"{by.column} gives an age outside {by.min_age}-{by.max_age} years at the "
            "extraction date", kind="within_row"))
    for cv in book.code_validity:
        alias = f"code${cv.column}"
        rows = ", ".join(
            f"({sql_str(c.code)}, DATE '{c.valid_from.isoformat()}', "
            + (f"DATE '{c.valid_to.isoformat()}'" if c.valid_to else "NULL::DATE") + ")"
            for c in load_offence_codes())
        plan.ctes[alias] = f"SELECT * FROM (VALUES {rows}) v(code, valid_from, valid_to)"
        plan.joins.append(f"LEFT JOIN {ident(alias)} ON {ident(alias)}.code = "
                          f"typed.{txt(cv.column)}")
        d = ident(cv.date)
        plan.rules.append(RowRule(
            f"{table}.{cv.column}.valid_on_{cv.date}", cv.column,
            f"({d} < {ident(alias)}.valid_from OR {d} > {ident(alias)}.valid_to)",
            f"{cv.column} was not in force on {cv.date} (see the code's validity window in "
            "the offence-code lookup)", kind="cross_table"))


def check_plan(contract: TableContract, book: RuleBook | None = None,
               policy: Policy | None = None) -> CheckPlan:
    """All rules of one table (column, uniqueness, references, within-row, cross-table)."""
    book = (book or load_rulebook()).for_table(contract.table)
    policy = policy or load_policy()
    plan = CheckPlan(contract)
    for col in contract.columns:
        plan.rules.extend(column_rules(contract.table, col, policy))
    _unique_rules(plan)
    _reference_rules(plan)
    _within_row_rules(plan, book)
    _cross_rules(plan, book)
    from pipeline.contracts.timeline import add_parent_date_rules

    add_parent_date_rules(plan, book.parent_dates)
    ids = [r.rule_id for r in plan.rules]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{contract.table}: duplicate rule ids in the generated rules")
    return plan


def table_rules(contract: TableContract) -> list[RowRule]:
    """All row rules of a table, in a fixed order (column rules first)."""
    return check_plan(contract).rules


def _typed_ctes(contract: TableContract) -> list[str]:
    cols = contract.columns
    # raw values are stored cleaned (no CSV quotes or surrounding spaces; empty is NULL)
    src = ", ".join(f"{ident(c.name)} AS {txt(c.name)}" for c in cols)
    typed = ", ".join(f"{cast_text(c, txt(c.name))} AS {ident(c.name)}" for c in cols)
    return [f"src AS (SELECT _line, {src} FROM raw.{contract.table} WHERE _extract_id = $eid)",
            f"typed AS (SELECT *, {typed} FROM src)"]


def check_query(plan: CheckPlan) -> str:
    """One scan of this extract's raw rows, yielding the rows that break a rule.

    Columns: ``_line``, ``_key`` (only when of the agreed format) and ``_hits``, the 1-based
    positions (in ``plan.rules``) of the rules the row breaks. A cheap screen (the OR of the
    rules not implied by others) comes first, so the list is only built for failing rows.
    """
    ctes = _typed_ctes(plan.contract)
    ctes += [f"{ident(name)} AS ({sql})" for name, sql in plan.ctes.items()]
    ctes += [f"{ident(alias)} AS ({parent_cte(*spec)})" for alias, spec in plan.parents.items()]
    hits = ", ".join(f"CASE WHEN {r.violation} THEN {i} END"
                     for i, r in enumerate(plan.rules, start=1))
    screen = " OR ".join(f"({r.violation})" for r in plan.rules if r.screen)
    return (f"WITH {', '.join(ctes)} "
            f"SELECT typed._line, {key_sql(plan.contract)} AS _key, "
            f"list_filter([{hits}], x -> x IS NOT NULL) AS _hits "
            f"FROM typed {' '.join(plan.joins)} WHERE {screen}")


def typed_query(contract: TableContract) -> str:
    """This extract's raw rows typed by the contract: ``_line`` and every column."""
    out = ", ".join(ident(c.name) for c in contract.columns)
    return f"WITH {', '.join(_typed_ctes(contract))} SELECT _line, {out} FROM typed"
