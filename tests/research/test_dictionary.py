"""The data dictionary: complete, rendered to docs/, written as DuckDB comments."""

from __future__ import annotations

import duckdb

from pipeline.research.dictionary import (
    DICTIONARY_MD,
    load_dictionary,
    render_markdown,
    write_column_comments,
)
from tests.research.helpers import copy_warehouse


def _columns(con) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for t, c in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = 'analysis'").fetchall():
        out.setdefault(t, set()).add(c)
    return out


def test_every_analysis_table_and_column_is_described(e2e_con):
    dictionary = load_dictionary()
    present = _columns(e2e_con)
    assert set(dictionary) == set(present)
    for table, columns in present.items():
        described = dictionary[table]["columns"]
        assert set(described) == columns, table
        assert dictionary[table]["description"] and all(described.values()), table


def test_the_markdown_page_is_generated_from_the_yaml():
    assert DICTIONARY_MD.read_text(encoding="utf-8") == render_markdown(load_dictionary()), \
        "docs/data_dictionary.md is stale: run python -m pipeline.research"


def test_comments_land_on_every_column(e2e, tmp_path):
    warehouse = copy_warehouse(e2e, tmp_path)
    con = duckdb.connect(str(warehouse))
    try:
        n = write_column_comments(con)
        rows = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                           "WHERE schema_name = 'analysis'").fetchall()
        tables = con.execute("SELECT comment FROM duckdb_tables() "
                             "WHERE schema_name = 'analysis'").fetchall()
    finally:
        con.close()
    assert n == len(rows) > 0
    meaning = load_dictionary()
    assert all(c == meaning[t]["columns"][col] for t, col, c in rows)
    assert all(c for (c,) in tables)
