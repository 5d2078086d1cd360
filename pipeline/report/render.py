"""Render the funder report: numbers JSON + figures + Typst template → PDF."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.analysis.estimates import AT_RISK_MONTHS, month_days
from pipeline.config import EvaluationConfig
from pipeline.report.figures import forest_plot, km_figure, love_plot, overlap_figure
from pipeline.report.numbers import build_numbers, policy_from
from pipeline.settings import PROJECT_ROOT
from pipeline.warehouse_io import read_extract, read_optional

TEMPLATE = PROJECT_ROOT / "reports" / "templates" / "funder_report.typ"
PDF_NAME = "funder_report.pdf"


def write_numbers(doc: dict, folder: Path) -> Path:
    """Write the numbers document with sorted keys so that identical inputs give identical bytes."""
    path = folder / "numbers.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def draw_figures(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                 doc: dict, folder: Path) -> dict[str, str]:
    """Draw every figure the document refers to; returns figure name -> file name."""
    import pandas as pd

    policy = policy_from(cfg)
    figures = {}
    km = read_extract(con, f"analysis.{doc['results']['km_source']}", extract_id)
    at_risk = at_risk_grid(km, [month_days(m) for m in AT_RISK_MONTHS])
    figures["km"] = km_figure(km, at_risk, policy, folder / "km.png").name
    balance = read_optional(con, "analysis.balance", extract_id)
    if balance is not None and "cohort" in balance.columns:
        balance = balance[balance["cohort"] == "started"]
    if balance is not None and len(balance):
        figures["love"] = love_plot(balance, folder / "love.png").name
    propensity = read_optional(con, "analysis.propensity", extract_id)
    if propensity is not None:
        ps = propensity[propensity["cohort"] == "started"]
        figures["overlap"] = overlap_figure(ps, folder / "overlap.png").name
    rows = [dict(r, group="analyses") for r in doc["results"]["hr_rows"]] + \
        [dict(r, group="subgroups") for r in doc["results"]["subgroups"]]
    if rows:
        frame = pd.DataFrame([{"label": r["label"], "estimate": r["value"],
                               "lower": r["lower"], "upper": r["upper"], "group": r["group"]}
                              for r in rows])
        frame = frame.astype({"estimate": float, "lower": float, "upper": float})
        figures["forest"] = forest_plot(frame, folder / "forest.png").name
    if doc.get("sequential", {}).get("history"):
        from pipeline.report.history import history_figure

        figures["history"] = history_figure(doc["sequential"]["history"],
                                            folder / "history.png").name
    return figures


def at_risk_grid(km: pd.DataFrame, days: list[int]) -> pd.DataFrame:
    """Numbers at risk at each of ``days`` per arm, read off a KM table: n_risk at the first
    time on or after the day (nobody is at risk after the last time)."""
    import numpy as np

    out = {}
    for arm, curve in km.groupby("arm"):
        times = curve["time"].to_numpy()
        n_risk = np.append(curve["n_risk"].to_numpy(), 0)
        out[arm] = n_risk[np.searchsorted(times, days, side="left")].round().astype(int)
    return pd.DataFrame(out, index=days).T


def compile_pdf(folder: Path, extraction_date: dt.date) -> Path:
    """Typeset ``funder_report.typ`` in ``folder`` with the bundled fonts only (reproducible)."""
    import typst

    shutil.copyfile(TEMPLATE, folder / TEMPLATE.name)
    out = folder / PDF_NAME
    stamp = int(dt.datetime.combine(extraction_date, dt.time()).replace(
        tzinfo=dt.UTC).timestamp())
    try:
        typst.compile(str(folder / TEMPLATE.name), output=str(out), root=str(folder),
                      ignore_system_fonts=True, timestamp=stamp)
    except typst.TypstError as exc:  # a template bug: show Typst's own located message
        raise RuntimeError(f"{TEMPLATE}: {getattr(exc, 'diagnostic', exc)}") from None
    return out


def render_report(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                  folder: Path) -> dict:
    """Build numbers and figures for one extract and typeset the PDF into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # figures of an earlier run must not linger
        old.unlink()
    doc = build_numbers(con, extract_id, cfg)
    if doc["status"] == "ok":
        doc["figures"] = draw_figures(con, extract_id, cfg, doc, folder)
    write_numbers(doc, folder)
    pdf = compile_pdf(folder, dt.date.fromisoformat(doc["provenance"]["extraction_date"]))
    return {"pdf": pdf, "numbers": doc}
