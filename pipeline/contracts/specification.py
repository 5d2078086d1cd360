"""The data specification for providers (``docs/data_specification.md``), generated from the
contracts so that it can never disagree with what the pipeline checks.

    python -m pipeline.contracts.specification          # rewrite docs/data_specification.md
    python -m pipeline.contracts.specification --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.contracts.rules import check_plan, type_description
from pipeline.contracts.schema import (
    EXTRACT_TABLES,
    ColumnSpec,
    load_contract,
    load_identifier_rules,
    load_offence_codes,
    load_policy,
    load_rulebook,
)
from pipeline.extract_format import MANIFEST
from pipeline.settings import PROJECT_ROOT

SPEC_PATH = PROJECT_ROOT / "docs" / "data_specification.md"
KIND_TITLES = {"column": "Values", "unique": "Keys", "within_row": "Within the row",
               "cross_table": "Against other files and the lookup"}


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _constraint(col: ColumnSpec, max_len: int) -> str:
    parts = []
    if col.allowed:
        parts.append("one of " + ", ".join(f"`{v}`" for v in col.allowed))
    if col.pattern:
        parts.append(f"format `{col.pattern}`")
    if col.lookup:
        parts.append("a code of the offence-code lookup")
    if col.references:
        table, key = col.references.split(".")
        parts.append(f"a {key} of {load_contract(table).file}")
    if col.min is not None or col.max is not None:
        parts.append(f"between {col.min} and {col.max}")
    if col.unique:
        parts.append("unique")
    if col.pseudonymised:
        parts.append("pseudonymised")
    if col.type == "VARCHAR" and not (col.allowed or col.pattern):
        parts.append(f"at most {col.max_length or max_len} characters")
    return "; ".join(parts)


def render() -> str:
    """The whole specification as Markdown."""
    policy = load_policy()
    book = load_rulebook()
    ids = load_identifier_rules()
    fmt = policy.file_format
    out = [
        "# Data specification: police and clinic extracts",
        "",
        "<!-- Generated from data_contracts/*.yaml by `python -m pipeline.contracts."
        "specification`. Do not edit by hand: a test fails when it is out of date. -->",
        "",
        "This is what the evaluation warehouse accepts from the police and clinic data "
        "managers, and what it does with rows that do not meet it. Every rule below has an id; "
        "the data-quality report and its CSV of quarantined rows use the same ids and reasons.",
        "",
        "## Delivery",
        "",
        f"- One folder per extract, named by its extract id, holding the four files below and "
        f"`{MANIFEST}` with `extract_id`, `extraction_date` (YYYY-MM-DD), `provider` and, per "
        "file, its `sha256` and `rows` (data rows: not the header, not blank lines). Write it "
        "with `python -m pipeline.provider_tools manifest` and check the folder with "
        "`python -m pipeline.provider_tools check FOLDER` before sending.",
        f"- Text encoding {fmt.get('encoding', 'UTF-8')} (a byte-order mark is accepted); "
        f"values separated by `{fmt.get('delimiter', ',')}`; the first line is the header "
        "naming the columns (in any order). Windows (CRLF) or Unix (LF) line breaks, one kind "
        "per file (a file mixing them is refused with the first line that differs); blank "
        "lines are skipped.",
        "- A value may be wrapped in double quotes, but no value may contain a comma, a double "
        "quote or a line break. An empty value means missing.",
        f"- Dates are written {fmt.get('date_format', 'YYYY-MM-DD')}; whole numbers without "
        "decimals or separators; true/false for yes/no columns.",
        f"- Lines longer than {policy.max_line_bytes:,} bytes are rejected; text values longer "
        f"than {policy.max_text_length} characters are quarantined.",
        "- The extract id (1-100 letters, digits, `.`, `_` or `-`, starting with a letter or "
        "digit) is the folder's name and the manifest's `extract_id`; the folder holds only "
        "plain files (symbolic links are refused) and the manifest lists only the four files "
        "below. The extraction date may not lie in the future nor before the study start "
        "(`study.first_index_date` in the evaluation configuration).",
        "- Changed data must be sent under a new extract id: an extract id that was loaded and "
        "accepted cannot be re-used for different files. Sending the same files again is "
        "harmless.",
        "",
        "## What happens to each row",
        "",
        "Every row received is either staged (used in the evaluation), quarantined (kept out, "
        "listed with its line, key, rule and reason) or, when the line cannot be split into the "
        "header's columns, a rejected line. The three always add up to the rows received.",
        "",
        "## What stops an extract",
        "",
        "The whole extract is stopped, with a one-line message naming the file, line or column "
        "and the fix, when:",
        "",
        "- the folder name, extract id, manifest entries or extraction date break the "
        "delivery rules above, or a file or folder is a symbolic link;",
        "- a file is missing or empty, is not UTF-8 text (a spreadsheet workbook, UTF-16, "
        "Windows-1252), or is not comma-separated;",
        "- a column is missing, renamed, duplicated or not in this specification;",
        "- a file's SHA-256 or row count differs from the manifest;",
        "- a key that must be unique appears on more than one line;",
        f"- a column's values are all invalid (at least {policy.wrong_type_min_values} values, "
        "none of the right type, code list or format);",
        f"- more than {policy.max_quarantine_share:.0%} of a file's rows are quarantined or "
        "rejected;",
        "- a changed file arrives under an extract id already accepted (an evaluator can "
        "remove an extract with `python -m pipeline purge EXTRACT_ID`, after which a corrected "
        "delivery under the same id loads);",
        "- the file carries direct identifiers (next section).",
        "",
        "## Direct identifiers are refused",
        "",
        "A file is refused, before anything of it is stored, when a column name looks like "
        "one of these kinds of identifier, or when any value of any column (coded, lookup and "
        "date columns included) looks like one, whatever its letter case. A value that meets "
        "this specification (a key of the agreed format, a listed or lookup code, a YYYY-MM-DD "
        "date, a whole number, true/false) cannot carry an identifier; every other value is "
        "tested against the patterns below. The message names the file, column, kind, number "
        "of rows and first line, never the value.",
        "",
        "| kind | refused column names (pattern) |",
        "| --- | --- |",
        *[f"| {_md(p.kind)} | `{_md(p.pattern)}` |" for p in ids.column_names],
        "",
        "| kind | refused values (pattern) |",
        "| --- | --- |",
        *[f"| {_md(p.kind)} | `{_md(p.pattern)}` |" for p in ids.values],
        "",
        *[f"In a date column, a date not written YYYY-MM-DD is refused as {p.kind} when it "
          f"lies {p.date_columns_min_years} or more years before the extraction date (or its "
          "year has two digits); a more recent one is an event date in the wrong format and is "
          "quarantined (`<column>.type`)."
          for p in ids.values if p.date_columns_min_years is not None],
        "",
        "Columns marked *pseudonymised* must hold keys of the agreed format and nothing else. "
        "Both providers make them with `python -m pipeline.provider_tools pseudonymise` and the "
        "same secret key file (`keygen`): key = prefix + the first 16 hex digits (upper case) of "
        "HMAC-SHA256(secret, identifier with white space removed, in upper case); prefix `PK` "
        "for people, `VK` for victims. The tool writes only this specification's columns and "
        "can turn a date of birth into the birth year.",
        "",
    ]
    for table in EXTRACT_TABLES:
        c = load_contract(table)
        out += [f"## {c.file} ({c.provider})", "", c.description, "",
                f"Primary key: `{c.primary_key}`.", "",
                "| column | type | required | allowed values / format | description |",
                "| --- | --- | --- | --- | --- |"]
        for col in c.columns:
            out.append(f"| `{col.name}` | {type_description(col)} | "
                       f"{'yes' if col.required else ''} | "
                       f"{_md(_constraint(col, policy.max_text_length))} | "
                       f"{_md(col.description)} |")
        out += ["", "Rules (a row breaking any of them is quarantined):", "",
                "| rule id | checks | reason given |", "| --- | --- | --- |"]
        for rule in check_plan(c).rules:
            out.append(f"| `{rule.rule_id}` | {KIND_TITLES[rule.kind]} | {_md(rule.reason)} |")
        out.append("")
    out += ["## Offence-code lookup", "",
            "Codes recorded outside their validity window are quarantined "
            f"({', '.join(f'`{r.table}.{r.column}.valid_on_{r.date}`' for r in book.code_validity)}"
            ").", "",
            "| code | description | family | valid from | valid to |",
            "| --- | --- | --- | --- | --- |"]
    for code in load_offence_codes():
        out.append(f"| `{code.code}` | {_md(code.description)} | {code.family} | "
                   f"{code.valid_from} | {code.valid_to or ''} |")
    out += ["", "## Rejected lines", "",
            "| rule id | reason |", "| --- | --- |"]
    from pipeline.ingest.load import REJECT_RULES, TRUNCATED, UNPARSEABLE

    for rid, reason in [*REJECT_RULES.values(), TRUNCATED, UNPARSEABLE]:
        out.append(f"| `{rid}` | {_md(reason.format(max=f'{policy.max_line_bytes:,}'))} |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.contracts.specification")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    p.add_argument("--out", type=Path, default=SPEC_PATH)
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m pipeline.contracts.specification",
                  file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
