"""The data dictionary of the ``analysis.*`` tables (``docs/data_dictionary.yaml``).

The YAML is the single source: ``docs/data_dictionary.md`` is rendered from it
(``python -m pipeline.research``; a test keeps it in step) and
``write_column_comments`` writes it into the warehouse as DuckDB table and column comments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import yaml

from pipeline.settings import PROJECT_ROOT

DICTIONARY_YAML = PROJECT_ROOT / "docs" / "data_dictionary.yaml"
DICTIONARY_MD = PROJECT_ROOT / "docs" / "data_dictionary.md"


def load_dictionary(path: Path = DICTIONARY_YAML) -> dict[str, dict]:
    """Table name (without schema) -> {"description": str, "columns": {column: meaning}}.

    Example
    -------
    >>> load_dictionary()["comparison_estimates"]["columns"]["estimate"]  # doctest: +SKIP
    'the point estimate on the scale of unit'
    """
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {name: {"description": str(t["description"]),
                   "columns": {str(c): str(m) for c, m in t["columns"].items()}}
            for name, t in raw["tables"].items()}


def render_markdown(dictionary: dict[str, dict]) -> str:
    """The Markdown page of the dictionary: one section and column table per analysis table."""
    out = ["# Data dictionary: the `analysis` tables", "",
           "Generated from `docs/data_dictionary.yaml` by `python -m pipeline.research`"
           "; do not edit by hand. Every table holds the rows of many extracts (`extract_id`); "
           "a research snapshot holds one extract's rows (README, *For researchers*). Person "
           "keys are pseudonymised (`PK` + 16 hex digits).", ""]
    for name, table in dictionary.items():
        out += [f"## `analysis.{name}`", "", table["description"], "",
                "| column | meaning |", "|---|---|"]
        out += [f"| `{c}` | {m.replace('|', '/')} |" for c, m in table["columns"].items()]
        out.append("")
    return "\n".join(out)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_column_comments(con: duckdb.DuckDBPyConnection,
                          dictionary: dict[str, dict] | None = None) -> int:
    """Write table and column comments of every ``analysis.*`` table present in the warehouse.

    Tables or columns the dictionary does not describe are left without a comment (a test
    keeps the dictionary complete). Returns the number of column comments written.
    """
    dictionary = dictionary if dictionary is not None else load_dictionary()
    present = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                          "WHERE table_schema = 'analysis'").fetchall()
    by_table: dict[str, set[str]] = {}
    for table, column in present:
        by_table.setdefault(table, set()).add(column)
    n = 0
    for table, columns in by_table.items():
        entry = dictionary.get(table)
        if entry is None:
            continue
        con.execute(f'COMMENT ON TABLE analysis."{table}" IS {_literal(entry["description"])}')
        for column, meaning in entry["columns"].items():
            if column in columns:
                con.execute(f'COMMENT ON COLUMN analysis."{table}"."{column}" IS '
                            f"{_literal(meaning)}")
                n += 1
    return n


def main() -> int:
    """Regenerate ``docs/data_dictionary.md`` from the YAML."""
    DICTIONARY_MD.write_text(render_markdown(load_dictionary()), encoding="utf-8")
    print(f"wrote {DICTIONARY_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
