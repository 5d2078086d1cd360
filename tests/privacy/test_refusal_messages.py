"""No refusal echoes a value (issue 12.2): canaries in header cells and values, over every
header, manifest and file refusal path; each message is one line naming file, line or column,
rule and fix."""

from __future__ import annotations

import json

import duckdb
import pytest

from pipeline.extract_format import sha256_file
from tests.ingest.conftest import run_all
from tests.privacy.canaries import all_canaries, search_terms

FILE = "police_persons.csv"


def _rewrite(folder, transform):
    path = folder / FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(transform(lines)) + "\n")
    m = json.loads((folder / "manifest.json").read_text())
    m["files"][FILE]["sha256"] = sha256_file(path)
    m["files"][FILE]["rows"] = len(transform(lines)) - 1
    (folder / "manifest.json").write_text(json.dumps(m))


def _set_header_cell(lines, position, value):
    header = lines[0].split(",")
    header[position] = value
    return [",".join(header), *lines[1:]]


def _add_column(lines, name):
    return [lines[0] + "," + name, *(x + ",x" for x in lines[1:])]


def _no_header(lines):
    canary = [v for k, v in all_canaries() if k == "names"][0]
    first = lines[1].split(",")
    first[3] = canary
    return [",".join(first), *lines[2:]]


def _header_cell(value):
    return lambda lines: _set_header_cell(lines, 3, value)


def _extra(value):
    return lambda lines: _add_column(lines, value)


CASES = {
    # kind of refusal -> (transform of the lines, text the message must contain)
    **{f"header_cell_{k}_{i}": (_header_cell(v), "is missing from the header")
       for i, (k, v) in enumerate(all_canaries())},
    **{f"extra_column_{k}_{i}": (_extra(v), "is not in the data contract")
       for i, (k, v) in enumerate(all_canaries())},
    "no_header_line": (_no_header, "line 1: column"),
    "identifier_column_named_like_an_address": (
        lambda ls: _add_column(ls, "12 Zqcanary Road street"), "looks like addresses"),
    "duplicate_unknown_column": (
        lambda ls: _add_column(_add_column(ls, "Zqharker Smithcanary"),
                               "Zqharker Smithcanary"), "line 1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_header_refusals_name_no_value(extract, case):
    transform, expected = CASES[case]
    _rewrite(extract, transform)
    result = run_all(duckdb.connect(), extract)
    assert result.error is not None and result.error_table == "police_persons"
    text = str(result.error)
    assert "\n" not in text and expected in text
    assert [t for t in search_terms() if t.decode() in text.lower()] == []
