"""The data providers' data-quality report: one HTML page and a CSV of quarantined rows.

For each delivered file: rows received, staged, quarantined (by rule, with the reason a data
manager can act on), rejected lines, blank lines, completeness by column, the police-clinic
linkage rate and the trend against the previous extract. The CSV lists every quarantined row
and rejected line by file, line, key (only keys of the agreed pseudonymised format), rule and
reason, so the provider can find and fix it. Neither file contains a cell value.

Command line: ``python -m pipeline.ingest.quality_report EXTRACT_ID --warehouse W --out DIR``.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
from pathlib import Path

import duckdb

from pipeline.contracts.schema import load_contract
from pipeline.ingest.quality import QualityDetails, generated_at, quality_details

HTML_NAME = "data_quality.html"
CSV_NAME = "quarantined_rows.csv"
JSON_NAME = "data_quality_summary.json"
CSV_COLUMNS = ["file", "line", "record_key", "rule_id", "column", "reason"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}
.bad{color:#a00;font-weight:600}.ok{color:#070}.note{color:#555;font-size:.9em}
"""


def csv_safe(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    d = 100 * (now - before)
    return f"{d:+.1f} pts"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class='n'>{c}</td>" if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(d: QualityDetails) -> str:
    """The report page (all text escaped; counts, rule ids, column names and reasons only)."""
    s = d.summary
    blocked = [f for f in d.files if f["status"] == "blocked"]
    verdict = ("<span class='bad'>blocked: the extract cannot be used until the problems "
               "below are fixed</span>" if blocked else
               "<span class='ok'>accepted</span>" if s["reconciles"] else
               "<span class='bad'>not fully loaded</span>")
    parts = [f"<h1>Data-quality report: {_e(s['extract_id'])}</h1>",
             f"<p>Extraction date {_e(s['extraction_date'])}; generated {generated_at()}. "
             f"Status: {verdict}.</p>",
             "<p class='note'>Rows are counted per file: received = staged + quarantined + "
             "rejected lines. Quarantined rows broke a rule and were kept out of the analysis; "
             f"each is listed with its line and reason in {CSV_NAME}. The report never shows "
             "a value from the files.</p>"]
    prev = d.previous["extract_id"] if d.previous else None
    parts.append("<h2>Rows by file</h2>")
    rows = []
    for f in d.files:
        share = (f["quarantined"] + f["rejected"]) / f["received"] if f["received"] else None
        pshare = None
        if f["previous_received"]:
            pshare = (f["previous_quarantined"] or 0) / f["previous_received"]
        rows.append([_e(f["file"]), str(f["received"]), str(f["loaded"]),
                     str(f["quarantined"]), str(f["rejected"]), str(f["blank_lines"]),
                     _pct(share), _e(f["status"]),
                     "" if f["previous_received"] is None else str(f["previous_received"]),
                     _pct(pshare), _e("; ".join(x for x in (f["message"], f["notes"]) if x))])
    parts.append(_table(["file", "received", "staged", "quarantined", "rejected lines",
                         "blank lines", "not staged", "status", f"received in {prev or '-'}",
                         "quarantined then", "messages"], rows, {1, 2, 3, 4, 5, 6, 8, 9}))
    link = s["linkage"]
    parts.append("<h2>Linkage between police and clinic data</h2>")
    rate = _pct(link["rate"])
    before = _pct(d.previous["linkage"]["rate"]) if d.previous else ""
    parts.append(f"<p>{link['linked_people']} of {link['clinic_people']} people referred to "
                 f"the clinic ({rate}) have a record in police_persons.csv"
                 + (f" (previous extract: {before})" if before else "") + ". A low rate "
                 "usually means the two providers pseudonymised with different keys.</p>")
    parts.append("<h2>Quarantined rows by rule</h2>")
    if d.rules:
        parts.append(_table(["file", "rule", "column", "what to fix", "rows"],
                            [[_e(load_contract(r["table"]).file), _e(r["rule_id"]),
                              _e(r["column"]), _e(r["reason"]), str(r["rows"])]
                             for r in d.rules], {4}))
    else:
        parts.append("<p class='ok'>No row was quarantined.</p>")
    parts.append("<h2>Rejected lines</h2>")
    if d.rejected:
        parts.append(_table(["file", "rule", "what to fix", "lines", "first line"],
                            [[_e(load_contract(r["table"]).file), _e(r["rule_id"]),
                              _e(r["reason"]), str(r["lines"]), str(r["first_line"])]
                             for r in d.rejected], {3, 4}))
    else:
        parts.append("<p class='ok'>Every line could be read.</p>")
    parts.append("<h2>Completeness by column</h2>")
    parts.append(_table(
        ["file", "column", "required", "filled", "filled share", "rows quarantined on it",
         "filled share before", "change"],
        [[_e(load_contract(c["table"]).file), _e(c["column"]), "yes" if c["required"] else "",
          str(c["filled"]), _pct(c["filled_share"]), str(c["quarantined"]),
          _pct(c["previous_share"]), _change(c["filled_share"], c["previous_share"])]
         for c in d.completeness], {3, 4, 5, 6, 7}))
    if d.attestation:
        parts.append("<h2>Independent check of the staged rows</h2>")
        parts.append(_table(["file", "expectations", "failed", "rows checked", "rows staged"],
                            [[_e(load_contract(a["table"]).file), str(a["expectations"]),
                              str(a["failed"]), str(a["rows_checked"]), str(a["rows_staged"])]
                             for a in d.attestation], {1, 2, 3, 4}))
    body = "\n".join(parts)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Data quality "
            f"{_e(s['extract_id'])}</title><style>{STYLE}</style></head><body>{body}"
            "</body></html>")


def write_quarantine_csv(con: duckdb.DuckDBPyConnection, extract_id: str, path: Path) -> int:
    """Every quarantined row and rejected line of the extract; returns the number of records."""
    rows = con.execute("""
        SELECT table_name, line, record_key, rule_id, column_name, reason
        FROM quarantine.rows WHERE extract_id = $1
        UNION ALL
        SELECT table_name, line, record_key, rule_id, NULL, reason
        FROM quarantine.rejected_lines WHERE extract_id = $1
        ORDER BY 1, 2, 4""", [extract_id]).fetchall()
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for table, *rest in rows:
            w.writerow([csv_safe(v) for v in (load_contract(table).file, *rest)])
    return len(rows)


def write_quality_report(con: duckdb.DuckDBPyConnection, extract_id: str,
                         folder: Path) -> dict[str, Path]:
    """Write the HTML report, the CSV of quarantined rows and the summary JSON to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    details = quality_details(con, extract_id)
    paths = {"html": folder / HTML_NAME, "csv": folder / CSV_NAME, "json": folder / JSON_NAME}
    # each file is written beside its final name and moved into place in one step, so a run
    # stopped half-way never leaves a half-written report for the providers
    staged = {k: p.with_name(f".{p.name}.partial") for k, p in paths.items()}
    staged["html"].write_text(render_html(details), encoding="utf-8")
    write_quarantine_csv(con, extract_id, staged["csv"])
    staged["json"].write_text(json.dumps(details.summary, indent=2, sort_keys=True) + "\n")
    for key, path in paths.items():
        os.replace(staged[key], path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.ingest.quality_report",
                                description="Write the data-quality report of a loaded extract.")
    p.add_argument("extract_id")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    con = duckdb.connect(str(args.warehouse), read_only=True)
    try:
        paths = write_quality_report(con, args.extract_id, args.out)
    finally:
        con.close()
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
