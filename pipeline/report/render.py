"""Render the funder report: numbers JSON + figures + Typst template → PDF."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb

from pipeline.config import EvaluationConfig
from pipeline.report.figures import km_figure
from pipeline.report.numbers import build_numbers, policy_from
from pipeline.settings import PROJECT_ROOT
from pipeline.warehouse_io import read_extract

TEMPLATE = PROJECT_ROOT / "reports" / "templates" / "funder_report.typ"
PDF_NAME = "funder_report.pdf"


def write_numbers(doc: dict, folder: Path) -> Path:
    """Write the numbers document with sorted keys so that identical inputs give identical bytes."""
    path = folder / "numbers.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def compile_pdf(folder: Path, extraction_date: dt.date) -> Path:
    """Typeset ``funder_report.typ`` in ``folder`` with the bundled fonts only (reproducible)."""
    import typst

    shutil.copyfile(TEMPLATE, folder / TEMPLATE.name)
    out = folder / PDF_NAME
    stamp = int(dt.datetime.combine(extraction_date, dt.time()).replace(
        tzinfo=dt.UTC).timestamp())
    typst.compile(str(folder / TEMPLATE.name), output=str(out), root=str(folder),
                  ignore_system_fonts=True, timestamp=stamp)
    return out


def render_report(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                  folder: Path) -> dict:
    """Build numbers and figures for one extract and typeset the PDF into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = build_numbers(con, extract_id, cfg)
    if doc["status"] == "ok":
        km = read_extract(con, "analysis.km", extract_id)
        at_risk = read_extract(con, "analysis.at_risk", extract_id).pivot(
            index="arm", columns="day", values="n_at_risk")
        km_figure(km, at_risk, policy_from(cfg), folder / doc["km"]["figure"])
    write_numbers(doc, folder)
    pdf = compile_pdf(folder, dt.date.fromisoformat(doc["provenance"]["extraction_date"]))
    return {"pdf": pdf, "numbers": doc}
