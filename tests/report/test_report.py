"""The funder PDF: every number it prints comes from numbers.json, nothing disclosive, the
designed sections, and the insufficient-data variant for a small cohort."""

from __future__ import annotations

import dataclasses
import json
import re

import duckdb
import pytest
from pypdf import PdfReader

from pipeline.config import load_config
from pipeline.disclosure import DisclosurePolicy, check_published_document
from pipeline.disclosure.checks import find_small_counts_in_text
from pipeline.report.render import TEMPLATE, render_report

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
HEADINGS = ["Summary", "The programme and who is compared", "Data quality",
            "Are the groups comparable?",
            "Results", "Methods", "Limitations", "Glossary", "Provenance"]


def pdf_pages(path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def json_tokens(node) -> set[str]:
    """Every number-like token in the document's values (and keys)."""
    if isinstance(node, dict):
        return set().union(*(json_tokens(k) | json_tokens(v) for k, v in node.items())) \
            if node else set()
    if isinstance(node, list):
        return set().union(*(json_tokens(v) for v in node)) if node else set()
    return set(NUMBER.findall(str(node)))


@pytest.fixture(scope="module")
def report(e2e):
    folder = e2e["report_dir"]
    return {"doc": json.loads((folder / "numbers.json").read_text()),
            "pages": pdf_pages(folder / "funder_report.pdf")}


def test_every_printed_number_comes_from_the_json_or_the_template(report):
    allowed = json_tokens(report["doc"]) | set(NUMBER.findall(TEMPLATE.read_text()))
    allowed |= {str(i) for i in range(1, len(report["pages"]) + 1)}  # page numbers
    text = "\n".join(report["pages"])
    stray = sorted({t for t in NUMBER.findall(text) if t.rstrip(".,") not in allowed})
    assert stray == []


def test_headline_numbers_are_printed(report):
    s = report["doc"]["summary"]
    text = " ".join(" ".join(report["pages"]).split())
    assert s["hr"]["estimate"] in text
    assert s["hr"]["ci"] in text
    if s["natural_frequencies"]:
        assert " ".join(s["natural_frequencies"].split()) in text
    assert report["doc"]["text"]["verdict"].split(":")[0] in text


def test_no_count_below_the_threshold_is_published(report):
    policy = DisclosurePolicy()
    assert check_published_document(report["doc"], policy) == []
    assert find_small_counts_in_text("\n".join(report["pages"]), policy) == []


def test_sections_in_order_and_page_count(report):
    text = "\n".join(report["pages"])
    positions = [text.find(f"{i}. {h}") for i, h in enumerate(HEADINGS, start=1)]
    assert all(p >= 0 for p in positions), dict(zip(HEADINGS, positions, strict=True))
    assert positions == sorted(positions)
    assert 5 <= len(report["pages"]) <= 12


def test_insufficient_cohort_gives_the_short_report(e2e, tmp_path):
    cfg = load_config(e2e["settings"].config_file)
    small = dataclasses.replace(cfg, min_treated=100_000)
    con = duckdb.connect(str(e2e["settings"].warehouse), read_only=True)
    try:
        out = render_report(con, e2e["extract_id"], small, tmp_path)
    finally:
        con.close()
    assert out["numbers"]["status"] == "insufficient"
    assert "summary" not in out["numbers"] and "results" not in out["numbers"]
    text = " ".join(" ".join(pdf_pages(out["pdf"])).split())
    assert "Too few people have started treatment to publish estimates" in text
    assert "does not mean the programme has no effect" in text
    assert "Hazard ratio" not in text and "hazard ratio" not in text


def test_exports_publish_no_small_counts_and_withhold_thin_estimates(e2e):
    import pandas as pd

    folder = e2e["report_dir"] / "exports"
    est = pd.read_csv(folder / "estimates.csv", dtype=str)
    policy = DisclosurePolicy()
    for col in ("n_treated", "n_comparison", "events_treated", "events_comparison"):
        values = est[col].dropna()
        hidden = values.isin([policy.suppressed_label, policy.secondary_label])
        numeric = values[~hidden].str.replace(",", "").astype(int)
        assert ((numeric == 0) | (numeric >= policy.threshold)).all(), col
    thin = est[est["events_treated"] == policy.suppressed_label]
    assert thin["estimate"].isna().all()
    flow = pd.read_csv(folder / "flow.csv", dtype=str)
    assert set(flow["arm"]) == {"treated", "comparison"}
    assert (folder / "estimates.parquet").stat().st_size > 0
