"""Unit checks of the identifier guard (pipeline/ingest/identifiers.py) on an in-memory DuckDB.

Fast and exact (no extract is generated), so that `make mutation` can run them for every mutant
of the guard: which header names and which values are refused, which values are screened at
all, the counts and first lines reported, and the one-line error (never the value).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest

from pipeline.contracts.schema import (
    ColumnSpec,
    IdentifierPattern,
    IdentifierRules,
    TableContract,
    load_policy,
)
from pipeline.ingest import identifiers
from pipeline.ingest.errors import ExtractError
from pipeline.ingest.identifiers import (
    FIX,
    NOT_PSEUDONYMISED,
    Finding,
    find_identifiers,
    header_label,
    identifier_columns,
    misfit_sql,
    normalise_name,
    refuse,
    refuse_identifier_columns,
    refuse_identifier_values,
    value_checks,
)

KEY = "PK[0-9A-F]{16}"
CONTRACT = TableContract(
    table="people", file="people.csv", provider="police", description="", primary_key="key",
    columns=(
        ColumnSpec("key", "VARCHAR", required=True, pattern=KEY, pseudonymised=True),
        ColumnSpec("site", "VARCHAR", allowed=("north", "south")),
        ColumnSpec("note", "VARCHAR", max_length=12),
        ColumnSpec("seen", "DATE"),
        ColumnSpec("visits", "INTEGER"),
    ),
)
PRESENT = ["key", "site", "note", "seen", "visits"]
GOOD_KEY = "PK0123456789ABCDEF"

# the file as the loader hands it over: cleaned text, NULL for empty, plus the line number
ROWS = [
    (2, GOOD_KEY, "north", "ok", "2024-01-31", "3"),           # conforms throughout
    (3, "PK123", "south", "ok", "2024-02-01", "4"),            # key of the wrong format
    (4, GOOD_KEY, "west", "a@b.org", "31/12/1980", "x"),       # every other column odd
    (5, "jo@x.com", None, "c@d.net", "2024-13-45", "5"),       # key holds an e-mail address
    (6, GOOD_KEY, "north", "ok", None, None),                  # NULLs are never odd
]


@pytest.fixture()
def con():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE f (_line INTEGER, key VARCHAR, site VARCHAR, note VARCHAR, "
                       "seen VARCHAR, visits VARCHAR)")
    connection.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    yield connection
    connection.close()


# --- header names --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("  Date of Birth ", "date_of_birth"),
    ("E-Mail", "e_mail"),
    ("NHS No.", "nhs_no"),
    ("__Post  Code__", "post_code"),
])
def test_normalise_name(name, expected):
    assert normalise_name(name) == expected


def test_identifier_columns_names_the_first_matching_kind_and_skips_contract_columns():
    header = ["key", "First Name", "DOB", "Post-code", "email_address", "notes", "site"]
    assert identifier_columns(header, CONTRACT) == [
        ("First Name", "names"),
        ("DOB", "full dates of birth"),
        ("Post-code", "postcodes"),
        ("email_address", "addresses"),  # also an e-mail pattern: only the first kind is named
    ]
    # a contract column is never refused for its name, even one that looks like an identifier
    contract = TableContract("t", "t.csv", "police", "", "email",
                             (ColumnSpec("email", "VARCHAR"),))
    assert identifier_columns(["email"], contract) == []


def test_identifier_columns_uses_the_rules_given():
    rules = IdentifierRules(column_names=(IdentifierPattern("secrets", "^secret"),), values=())
    assert identifier_columns(["Secret Word", "DOB"], CONTRACT, rules) == [
        ("Secret Word", "secrets")]


def test_refuse_identifier_columns_message():
    path = Path("landing/x/people.csv")
    refuse_identifier_columns(path, ["key", "site"], CONTRACT)  # clean: no error
    with pytest.raises(ExtractError) as err:
        refuse_identifier_columns(path, ["key", "DOB", "Surname"], CONTRACT)
    # 1 of the contract's 5 columns: not a recognisable header line, so line 1 may be data
    # and no cell is quoted, however much it looks like a column name
    assert str(err.value) == (
        f"{path}: refused by the identifier guard: column 2 of the header looks like full "
        f"dates of birth; column 3 of the header looks like names; {FIX}")


def test_a_data_value_shaped_like_a_column_name_is_never_quoted():
    with pytest.raises(ExtractError) as err:  # a file sent without its header line
        refuse_identifier_columns(Path("x.csv"), ["PK0123456789ABCDEF", "1980", "Zipporah",
                                                  "M"], CONTRACT)
    assert "Zipporah" not in str(err.value)


@pytest.mark.parametrize(("header", "position", "column_like", "expected"), [
    (["key", "site", "note", "notes"], 3, False, "'notes'"),      # a header line (3 of 5)
    (["key", "site", "notes"], 2, False, "3 of the header"),      # 2 of 5: not a header line
    (["key", "site", "note", "Notes"], 3, False, "4 of the header"),  # not lower case
    (["key", "site", "note", "Notes"], 3, True, "'Notes'"),       # named like a column
    (["key", "site", "note", "john smith"], 3, False, "4 of the header"),  # a name value
    (["john smith", "x"], 0, True, "1 of the header"),
    (["notes", "x"], 0, False, "1 of the header"),                # no header line at all
    (["a", "b", "site"], 2, False, "'site'"),                     # a contract column
])
def test_header_label_quotes_a_cell_only_when_it_cannot_be_a_value(
        header, position, column_like, expected):
    assert header_label(header, position, CONTRACT, column_like=column_like) == expected


def test_header_label_half_the_contract_makes_a_header_line():
    two = TableContract("t", "t.csv", "police", "", "key",
                        (ColumnSpec("key", "VARCHAR"), ColumnSpec("site", "VARCHAR")))
    assert header_label(["key", "notes"], 1, two) == "'notes'"  # 1 of 2 columns
    assert header_label(["notes"], 0, two) == "1 of the header"


# --- which values are screened --------------------------------------------------------------


def test_misfit_sql_keeps_only_values_that_break_the_contract(con):
    select, where = misfit_sql(CONTRACT, PRESENT)
    rows = con.execute(f"SELECT _line, {select} FROM f WHERE {where} ORDER BY _line").fetchall()
    assert rows == [
        (3, "PK123", None, None, None, None),
        (4, None, "west", None, "31/12/1980", "x"),
        (5, "jo@x.com", None, None, None, None),
    ]
    # "c@d.net" fits note's 12 characters and "2024-13-45" has the shape of a date: text that
    # meets the contract's format is not screened (the staging rules quarantine a bad date)
    names = [d[0] for d in con.execute(f"SELECT {select} FROM f LIMIT 0").description]
    assert names == ["key$odd", "site$odd", "note$odd", "seen$odd", "visits$odd"]


def test_misfit_sql_of_no_columns_selects_nothing():
    assert misfit_sql(CONTRACT, []) == ("NULL AS _none", "FALSE")
    select, where = misfit_sql(CONTRACT, ["visits"])
    assert where == '"visits$odd" IS NOT NULL' and "AS \"visits$odd\"" in select


def test_misfit_sql_uses_the_configured_text_length(monkeypatch):
    # a text column without its own max_length is held to validation.yaml's max_text_length
    short = dataclasses.replace(load_policy(), max_text_length=5)
    monkeypatch.setattr(identifiers, "load_policy", lambda: short)
    contract = TableContract("t", "t.csv", "police", "", "free",
                             (ColumnSpec("free", "VARCHAR"),))
    select, where = misfit_sql(contract, ["free"])
    rows = duckdb.sql(f"SELECT {select} FROM (VALUES ('abcde'), ('abcdef')) v(free) "
                      f"WHERE {where}").fetchall()
    assert rows == [("abcdef",)]


def _rules(*values: IdentifierPattern) -> IdentifierRules:
    return IdentifierRules(column_names=(), values=values)


def test_value_checks_per_column_and_kind():
    rules = _rules(IdentifierPattern("e-mail addresses", "@"),
                   IdentifierPattern("codes", "[0-9]", skip_allowed_columns=True))
    checks = value_checks(CONTRACT, ["key", "site", "seen"], rules)
    assert [(c, k) for c, k, _ in checks] == [
        ("key", NOT_PSEUDONYMISED), ("key", "e-mail addresses"), ("key", "codes"),
        ("site", "e-mail addresses"),                   # allowed-value column: "codes" skipped
        ("seen", "e-mail addresses"), ("seen", "codes"),
    ]
    assert checks[0][2] == '"key$odd" IS NOT NULL'
    assert checks[1][2] == """regexp_matches("key$odd", '@')"""
    assert value_checks(CONTRACT, [], rules) == []
    # a pattern skipped for allowed-value columns does not end the list for that column
    rules = _rules(IdentifierPattern("codes", "[0-9]", skip_allowed_columns=True),
                   IdentifierPattern("e-mail addresses", "@"))
    assert [(c, k) for c, k, _ in value_checks(CONTRACT, ["site"], rules)] == [
        ("site", "e-mail addresses")]


@pytest.mark.parametrize(("text", "year", "fires"), [
    ("31/12/1980", 2026, True),    # 46 years before the extraction: could be a date of birth
    ("31/12/2008", 2026, True),    # exactly 18 years
    ("31/12/2009", 2026, False),   # 17 years: an event date in the wrong format
    ("31/12/80", 2026, True),      # the year cannot be told: refuse
    ("31/12/2020", None, True),    # no extraction date known: refuse
])
def test_dates_in_a_date_column_are_refused_only_when_old_enough(text, year, fires):
    rules = _rules(IdentifierPattern("full dates of birth", "[0-9]+/[0-9]+/[0-9]+",
                                     date_columns_min_years=18))
    checks = value_checks(CONTRACT, ["seen", "note"], rules, extraction_year=year)
    assert [c for c, _, _ in checks] == ["note", "seen"]  # contract order, not argument order
    (_, _, note_pred), (_, _, seen_pred) = checks
    row = duckdb.sql(f"SELECT {seen_pred}, {note_pred} FROM "
                     f"(SELECT '{text}' AS \"seen$odd\", '{text}' AS \"note$odd\")").fetchone()
    assert row == (fires, True)  # the age limit applies to date columns only


# --- findings and the error -----------------------------------------------------------------


def _misfits(con) -> str:
    select, where = misfit_sql(CONTRACT, PRESENT)
    con.execute(f"CREATE TEMP TABLE m AS SELECT _line, {select} FROM f WHERE {where}")
    return "m"


def test_find_identifiers_counts_rows_and_first_lines(con):
    found = find_identifiers(con, _misfits(con), CONTRACT, PRESENT, extraction_year=2026)
    assert found == [
        Finding("key", NOT_PSEUDONYMISED, 2, 3),
        Finding("key", "e-mail addresses", 1, 5),
        Finding("seen", "full dates of birth", 1, 4),
    ]


def test_a_recent_date_in_another_format_is_not_refused_when_the_extraction_year_is_known(con):
    # "01/02/2020" in the date column is an event date written wrongly (staging quarantines
    # it), not a date of birth, once the extraction year (2026) is known
    con.execute("DELETE FROM f")
    con.execute(f"INSERT INTO f VALUES (7, '{GOOD_KEY}', 'north', 'ok', '01/02/2020', '1')")
    path = Path("people.csv")
    refuse_identifier_values(con, "f", path, CONTRACT, PRESENT, extraction_year=2026)
    found = find_identifiers(con, _misfits(con), CONTRACT, PRESENT, extraction_year=2026)
    assert found == []
    assert find_identifiers(con, "m", CONTRACT, PRESENT) == [
        Finding("seen", "full dates of birth", 1, 7)]
    with pytest.raises(ExtractError, match="column 'seen' holds full dates of birth"):
        refuse_identifier_values(con, "f", path, CONTRACT, PRESENT)


def test_find_identifiers_orders_by_the_given_column(con):
    con.execute("CREATE TEMP TABLE m2 AS SELECT _line, 10 - _line AS rank, * EXCLUDE (_line) "
                f"FROM (SELECT _line, {misfit_sql(CONTRACT, PRESENT)[0]} FROM f) "
                "WHERE \"key$odd\" IS NOT NULL")
    found = find_identifiers(con, "m2", CONTRACT, PRESENT, order_col="rank")
    assert found[0] == Finding("key", NOT_PSEUDONYMISED, 2, 5)  # min(10 - 3, 10 - 5)


def test_find_identifiers_on_a_clean_file_runs_no_pattern(con):
    con.execute("CREATE TEMP TABLE empty AS SELECT * FROM f WHERE FALSE")
    assert find_identifiers(con, "empty", CONTRACT, PRESENT) == []
    assert find_identifiers(con, "f", CONTRACT, []) == []  # no columns, no checks


def test_finding_describe():
    assert Finding("note", "NHS numbers", 3, 17).describe() == (
        "column 'note' holds NHS numbers (3 row(s), first at line 17)")


def test_refuse_names_at_most_four_findings():
    path = Path("people.csv")
    refuse(path, [])  # nothing found: no error
    found = [Finding(f"c{i}", "names", i, i + 1) for i in range(1, 7)]
    with pytest.raises(ExtractError) as err:
        refuse(path, found[:4])
    assert str(err.value) == ("people.csv: refused by the identifier guard: "
                              + "; ".join(f.describe() for f in found[:4]) + f"; {FIX}")
    for extra in (1, 2):
        with pytest.raises(ExtractError) as err:
            refuse(path, found[:4 + extra])
        assert str(err.value) == ("people.csv: refused by the identifier guard: "
                                  + "; ".join(f.describe() for f in found[:4])
                                  + f" and {extra} more; {FIX}")


def test_refuse_identifier_values_names_column_kind_and_line_never_the_value(con):
    path = Path("landing/e1/people.csv")
    with pytest.raises(ExtractError) as err:
        refuse_identifier_values(con, "f", path, CONTRACT, PRESENT, extraction_year=2026)
    message = str(err.value)
    assert message == (
        f"{path}: refused by the identifier guard: "
        f"column 'key' holds {NOT_PSEUDONYMISED} (2 row(s), first at line 3); "
        "column 'key' holds e-mail addresses (1 row(s), first at line 5); "
        "column 'seen' holds full dates of birth (1 row(s), first at line 4); " + FIX)
    for _, *values in ROWS:
        for value in values:
            if value and len(value) > 1 and value not in ("ok", "north", "south"):
                assert value not in message
    # the temporary copy of the odd values is gone, also after a refusal
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_misfits'"
                       ).fetchone()[0] == 0


def test_refuse_identifier_values_passes_a_clean_file(con):
    con.execute("DELETE FROM f WHERE _line IN (3, 4, 5)")
    refuse_identifier_values(con, "f", Path("people.csv"), CONTRACT, PRESENT)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_misfits'"
                       ).fetchone()[0] == 0


# --- issue 12: dates of birth written as valid dates; values that break the contract are not
# stored (pipeline.ingest.identifiers.birth_date_checks / stored_columns)

PERSONS = TableContract(
    table="police_persons", file="police_persons.csv", provider="police", description="",
    primary_key="key",
    columns=(ColumnSpec("key", "VARCHAR", required=True, pattern=KEY, pseudonymised=True),
             ColumnSpec("birth_year", "INTEGER"), ColumnSpec("date_of_death", "DATE")))


def _relation(con, contract, rows):
    cols = ", ".join(f"{c} VARCHAR" for c in contract.column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE g (_line BIGINT, {cols})")
    con.executemany(f"INSERT INTO g VALUES ({', '.join('?' * (len(rows[0])))})", rows)


def test_a_valid_date_near_the_rows_birth_year_is_a_date_of_birth():
    con = duckdb.connect()
    _relation(con, PERSONS, [
        [2, "PK" + "A" * 16, "1985", "1985-03-14"],  # the date of birth itself
        [3, "PK" + "B" * 16, "1985", "1994-12-31"],  # aged 9: still a date of birth
        [4, "PK" + "C" * 16, "1985", "2023-05-01"],  # a real date of death
        [5, "PK" + "D" * 16, "1985", None],
        [6, "PK" + "E" * 16, "1985", "1985-02-30"],  # not a date: the type rule's business
        [7, "PK" + "F" * 16, "1985", "14/03/1985"],  # other format: the value patterns'
    ])
    found = identifiers.find_birth_dates(con, "g", PERSONS, list(PERSONS.column_names))
    assert found == [Finding("date_of_death", "full dates of birth", 2, 2)]
    # a death 18 or more years before the extraction is no date of death in this study
    found = identifiers.find_birth_dates(con, "g", PERSONS, list(PERSONS.column_names),
                                         extraction_year=2041)
    assert found == [Finding("date_of_death", "full dates of birth", 3, 2)]


def test_an_old_valid_date_is_a_date_of_birth_except_in_the_offence_history():
    con = duckdb.connect()
    _relation(con, CONTRACT, [[2, "PK" + "A" * 16, "north", None, "2008-10-31", "1"],
                              [3, "PK" + "B" * 16, "north", None, "2008-11-01", "1"]])
    found = identifiers.find_birth_dates(con, "g", CONTRACT, list(CONTRACT.column_names),
                                         extraction_year=2026)
    assert found == [Finding("seen", "full dates of birth", 2, 2)]
    assert identifiers.find_birth_dates(con, "g", CONTRACT, list(CONTRACT.column_names)) == []
    offences = dataclasses.replace(CONTRACT, table="police_offences")  # a lifetime history
    assert identifiers.find_birth_dates(con, "g", offences, list(CONTRACT.column_names),
                                        extraction_year=2026) == []


def test_stored_columns_keep_conforming_values_and_mark_the_others():
    con = duckdb.connect()
    _relation(con, CONTRACT, [
        [2, "PK" + "A" * 16, "north", "ok", "2024-01-02", "3"],
        [3, "PK" + "A" * 16, "Harker", "a" * 20, "14 March", "ten"],
        [4, "PK" + "A" * 16, None, None, None, None]])
    rows = con.execute(f"SELECT {identifiers.stored_columns(CONTRACT)} FROM g ORDER BY _line"
                       ).fetchall()
    limit = CONTRACT.column("note").max_length
    assert rows == [("PK" + "A" * 16, "north", "ok", "2024-01-02", "3"),
                    ("PK" + "A" * 16, "#", "#" * (limit + 1), "#", "#"),
                    ("PK" + "A" * 16, None, None, None, None)]
    # every marker breaks its column's contract again (staging quarantines the row as before)
    odd = misfit_sql(CONTRACT, list(CONTRACT.column_names))[0]
    marked = con.execute(f"SELECT {odd} FROM (SELECT {identifiers.stored_columns(CONTRACT)} "
                         "FROM g WHERE _line = 3)").fetchone()
    assert all(v is not None for v in marked[1:])
