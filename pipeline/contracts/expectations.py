"""Great Expectations suites generated from the contracts (never written by hand).

``expectation_specs`` turns a table contract and the rule book into plain data (expectation
class name, arguments, the contract rule it attests); ``build_suite`` turns that into a GE
``ExpectationSuite``. Great Expectations is imported only inside ``build_suite`` (it takes
seconds to import), never at module import.

The suite checks a *staged* table, joined with the few parent and lookup columns that the
cross-table rules need (``attestation_sql``): it is an independent attestation that quarantine
let nothing through. Reference resolution itself is checked in SQL (``references_resolve``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field

from pipeline.contracts.rules import FORMULA_STARTS, date_order_pairs, ident
from pipeline.contracts.schema import (
    Policy,
    RuleBook,
    TableContract,
    load_offence_codes,
    load_policy,
    load_rulebook,
)
from pipeline.contracts.timeline import relative_sql

# an open-ended code window ends here: the last year a pandas nanosecond timestamp holds, so the
# helper column stays on Great Expectations' vectorised datetime path (any later date would not)
FAR_FUTURE = dt.date(2261, 12, 31)


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation as data: GE class name, its arguments, the contract rule it attests."""

    type: str
    kwargs: dict
    rule: str
    row_condition: tuple[str, str, tuple[str, ...]] | None = None  # (column, in|not_in, values)
    implies: tuple[str, ...] = ()  # further rules this expectation attests (``_text_specs``)

    @property
    def columns(self) -> str:
        names = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        return ",".join(names)


@dataclass(frozen=True)
class AttestationFrame:
    """SQL yielding the staged rows plus helper columns, and the helper columns' names."""

    sql: str
    helpers: tuple[str, ...] = field(default_factory=tuple)


def _dt(d: dt.date) -> dt.datetime:
    # DuckDB DATE columns arrive in pandas as datetime64; compare with datetimes
    return dt.datetime(d.year, d.month, d.day)


def attestation_sql(contract: TableContract, book: RuleBook | None = None,
                    sample: float | None = None, seed: int = 0) -> AttestationFrame:
    """This extract's staged rows with parent period and code-window columns (``$eid``,
    ``$xdate`` parameters).

    ``sample`` (a fraction below 1) keeps the rows whose key hashes, with ``seed``, into that
    fraction of the 64-bit range: each row in or out on its own (an unbiased sample of about
    that share), the same rows on every run and any number of threads, and chosen before the
    joins. DuckDB's reservoir sample of the joined rows took 2.3 s for 100,000 of 650,000
    offences; this takes 0.4 s."""
    book = (book or load_rulebook()).for_table(contract.table)
    cols = ", ".join(f"t.{ident(c)}" for c in contract.column_names)
    joins, extra, helpers = [], [], []
    for n, wp in enumerate(book.within_parent):
        alias = f"p{n}"
        start, end = f"_parent_{wp.start}", f"_parent_{wp.end}"
        joins.append(f"LEFT JOIN staging.{wp.parent} {alias} ON {alias}._extract_id = "
                     f"t._extract_id AND {alias}.{ident(wp.key)} = t.{ident(wp.key)}")
        extra += [f"{alias}.{ident(wp.start)} AS {ident(start)}",
                  f"coalesce({alias}.{ident(wp.end)}, $xdate) AS {ident(end)}"]
        helpers += [start, end]
    for n, cv in enumerate(book.code_validity):
        alias = f"c{n}"
        rows = ", ".join(f"('{c.code}', DATE '{c.valid_from}', DATE "
                         f"'{c.valid_to or FAR_FUTURE}')" for c in load_offence_codes())
        joins.append(f"LEFT JOIN (VALUES {rows}) {alias}(code, valid_from, valid_to) "
                     f"ON {alias}.code = t.{ident(cv.column)}")
        extra += [f"{alias}.valid_from AS {ident('_valid_from_' + cv.column)}",
                  f"{alias}.valid_to AS {ident('_valid_to_' + cv.column)}"]
        helpers += [f"_valid_from_{cv.column}", f"_valid_to_{cv.column}"]
    for n, pd_rule in enumerate(book.parent_dates):
        alias, helper = f"r{n}", f"_relative_{n}"
        joins.append(f"LEFT JOIN ({relative_sql(pd_rule)}) {alias} ON {alias}.k = "
                     f"t.{ident(pd_rule.path[0])}")
        value = (f"make_date({alias}.v, 1, 1)" if pd_rule.check == "not_before_year"
                 else f"{alias}.v")
        extra.append(f"{value} AS {ident(helper)}")
        helpers.append(helper)
    select = ", ".join([cols, *extra])
    sql = (f"SELECT {select} FROM staging.{contract.table} t {' '.join(joins)} "
           "WHERE t._extract_id = $eid")
    if sample is not None and sample < 1:
        cut = int(max(sample, 0.0) * 2.0**64)
        sql += (f" AND hash(t.{ident(contract.primary_key)}, {int(seed)}) < "
                f"{min(cut, 2**64 - 1)}::UBIGINT")
    return AttestationFrame(sql, tuple(helpers))


def expectation_specs(contract: TableContract, extraction_date: dt.date,
                      book: RuleBook | None = None,
                      policy: Policy | None = None) -> list[ExpectationSpec]:
    """Every expectation a staged table must meet, derived from its contract and rules."""
    book = (book or load_rulebook()).for_table(contract.table)
    policy = policy or load_policy()
    t = contract.table
    out = [ExpectationSpec("ExpectTableColumnsToMatchSet",
                           {"column_set": contract.column_names, "exact_match": False},
                           f"{t}.columns")]
    for col in contract.columns:
        rid = f"{t}.{col.name}"
        c = {"column": col.name}
        if col.required:
            out.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", c, f"{rid}.required"))
        if col.unique:
            out.append(ExpectationSpec("ExpectColumnValuesToBeUnique", c, f"{rid}.unique"))
        sets = ([("allowed", list(col.allowed))] if col.allowed else []) + (
            [("lookup", [x.code for x in load_offence_codes()])]
            if col.lookup == "offence_codes.code" else [])
        text = (_text_specs(t, col.name, col.max_length or policy.max_text_length)
                if col.type == "VARCHAR" else [])
        for kind, value_set in sets:
            # a value in the set meets every text rule the set's own values meet: those
            # expectations would only repeat it (a quarter of all expectations, each ~25 ms)
            implied = tuple(x.rule for x in text if _all_meet(x, value_set))
            out.append(ExpectationSpec("ExpectColumnValuesToBeInSet",
                                       {**c, "value_set": value_set}, f"{rid}.{kind}",
                                       implies=implied))
            text = [x for x in text if x.rule not in implied]
        if col.pattern:
            out.append(ExpectationSpec("ExpectColumnValuesToMatchRegex",
                                       {**c, "regex": col.pattern}, f"{rid}.format"))
        out += text
        if col.min is not None or col.max is not None:
            out.append(ExpectationSpec("ExpectColumnValuesToBeBetween",
                                       {**c, "min_value": col.min, "max_value": col.max},
                                       f"{rid}.range"))
        if col.type == "DATE" and book.not_after_extraction:
            out.append(ExpectationSpec("ExpectColumnValuesToBeBetween",
                                       {**c, "max_value": _dt(extraction_date)},
                                       f"{rid}.not_after_extraction"))
    for by in book.birth_year:
        year = extraction_date.year
        out.append(ExpectationSpec("ExpectColumnValuesToBeBetween",
                                   {"column": by.column, "min_value": year - by.max_age,
                                    "max_value": year - by.min_age},
                                   f"{t}.{by.column}.plausible"))
    for order in book.date_order:
        for a, b, _ in date_order_pairs(order.columns):
            out.append(_later(b, a, f"{t}.{b}.not_before_{a}"))
    for cond in book.conditional:
        if cond.required:
            out.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": cond.column},
                                       f"{t}.{cond.column}.required_when",
                                       (cond.when, "in", cond.values)))
        if cond.otherwise_empty:
            out.append(ExpectationSpec("ExpectColumnValuesToBeNull", {"column": cond.column},
                                       f"{t}.{cond.column}.empty_unless",
                                       (cond.when, "not_in", cond.values)))
    for wp in book.within_parent:
        rid = f"{t}.{wp.column}.within_parent"
        out.append(_later(wp.column, f"_parent_{wp.start}", rid))
        out.append(_later(f"_parent_{wp.end}", wp.column, rid))
    for cv in book.code_validity:
        rid = f"{t}.{cv.column}.valid_on_{cv.date}"
        out.append(_later(cv.date, f"_valid_from_{cv.column}", rid))
        out.append(_later(f"_valid_to_{cv.column}", cv.date, rid))
    for n, pd_rule in enumerate(book.parent_dates):
        helper = f"_relative_{n}"
        if pd_rule.check == "not_before_year":
            out.append(_later(pd_rule.column, helper, pd_rule.rule_id))
        else:
            out.append(_later(helper, pd_rule.column, pd_rule.rule_id))
    return out


def _text_specs(table: str, column: str, max_len: int) -> list[ExpectationSpec]:
    """Length, formula and quote expectations of a text column."""
    c, rid = {"column": column}, f"{table}.{column}"
    starts = "".join("\\" + s if s in "+-" else s for s in FORMULA_STARTS)
    return [ExpectationSpec("ExpectColumnValueLengthsToBeBetween",
                            {**c, "min_value": 1, "max_value": max_len}, f"{rid}.length"),
            ExpectationSpec("ExpectColumnValuesToNotMatchRegex",
                            {**c, "regex": f"^[{starts}\\t\\r]"}, f"{rid}.formula"),
            ExpectationSpec("ExpectColumnValuesToNotMatchRegex", {**c, "regex": '"'},
                            f"{rid}.quote")]


def _all_meet(spec: ExpectationSpec, values: list[str]) -> bool:
    """Every value passes the text expectation (checked as GE's pandas engine checks it)."""
    kw = spec.kwargs
    if spec.type == "ExpectColumnValueLengthsToBeBetween":
        return all(kw["min_value"] <= len(v) <= kw["max_value"] for v in values)
    return not any(re.search(kw["regex"], v) for v in values)


def _later(later: str, earlier: str, rule: str) -> ExpectationSpec:
    return ExpectationSpec("ExpectColumnPairValuesAToBeGreaterThanB",
                           {"column_A": later, "column_B": earlier, "or_equal": True,
                            "ignore_row_if": "either_value_is_missing"}, rule)


def import_great_expectations():
    """Import Great Expectations without the 3-4 s its import chain spends compiling grammars.

    GE imports altair, which imports jsonschema, whose format checkers import
    ``rfc3987_syntax`` when it is installed (Jupyter's dependencies install it); that module
    compiles 38 Lark grammars at import, for an "iri" string format that no contract uses.
    jsonschema skips a format whose module cannot be imported, so the module is hidden for
    jsonschema's first import only and nothing else in the process is affected.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    hide = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if hide:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # ImportError on import
    try:
        import great_expectations as gx
    finally:
        if hide and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
    return gx


def ephemeral_context():
    """(gx module, an in-memory GE context without analytics or progress bars)."""
    gx = import_great_expectations()
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # GE fingerprints every in-memory batch by hashing the whole frame (seconds for millions of
    # rows) unless it is above this size; the fingerprint is only batch metadata
    pandas_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                               analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False))
    return gx, gx.get_context(mode="ephemeral", project_config=config)


def build_suite(contract: TableContract, extraction_date: dt.date, name: str | None = None):
    """A Great Expectations ``ExpectationSuite`` for one staged table (imports GE lazily).

    Adding it to a context (``ephemeral_context``) is the caller's step.
    """
    gx = import_great_expectations()
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    specs = expectation_specs(contract, extraction_date)
    expectations = []
    for spec in specs:
        kwargs = dict(spec.kwargs)
        if spec.row_condition:
            column, op, values = spec.row_condition
            kwargs["row_condition"] = (Column(column).is_in(values) if op == "in"
                                       else Column(column).is_not_in(values))
        meta = {"rule": spec.rule, **({"implies": list(spec.implies)} if spec.implies else {})}
        expectations.append(getattr(gxe, spec.type)(**kwargs, meta=meta))
    # the constructor takes the list as it is; add_expectation compares each new expectation
    # with every earlier one (quadratic: half a second for a 53-expectation suite)
    suite = gx.ExpectationSuite(name=name or f"{contract.table}_contract",
                                expectations=expectations)
    # the constructor logs and skips an expectation it cannot take: refuse instead
    if len(suite.expectations) != len(specs):
        raise RuntimeError(f"the {contract.table} suite kept {len(suite.expectations)} of "
                           f"{len(specs)} expectations generated from its contract")
    return suite
