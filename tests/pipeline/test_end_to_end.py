"""One end-to-end materialisation of every asset on a small extract, and the PDF it produces."""

from __future__ import annotations

import json

import numpy as np
from pypdf import PdfReader

from pipeline.disclosure import DisclosurePolicy, check_published_document


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_every_asset_materialises(e2e, e2e_con):
    assert e2e["ok"]
    n_staged = e2e_con.execute("SELECT count(*) FROM staging.police_persons").fetchone()[0]
    assert n_staged == 1500
    assert (e2e["report_dir"] / "funder_report.pdf").stat().st_size > 20_000


def test_flow_table_adds_up(e2e, e2e_con):
    from pipeline.cohort.checks import flow_problems, immortal_time_problems

    assert flow_problems(e2e_con, e2e["extract_id"]) == []
    assert immortal_time_problems(e2e_con, e2e["extract_id"]) == 0


def test_pdf_shows_the_numbers_of_the_analysis_tables(e2e, e2e_con):
    doc = json.loads((e2e["report_dir"] / "numbers.json").read_text())
    text = pdf_text(e2e["report_dir"] / "funder_report.pdf")
    assert e2e["extract_id"] in text
    for f in doc["provenance"]["files"]:
        assert f["sha256"] in text.replace("\n", "")
    assert doc["cohort"]["treated_n"] in text and doc["cohort"]["comparison_n"] in text
    # the 12-month proportions in the PDF equal those recomputed from the analysis tables
    rows = e2e_con.execute(
        "SELECT arm, n, events FROM analysis.window_proportions WHERE months = 12").fetchall()
    for arm, n, events in rows:
        published = next(p for p in doc["results"]["proportions"]
                         if p["months"] == 12 and p["arm"] == arm)
        assert published["percent"] == f"{100 * events / n:.1f}%"
        assert published["percent"] in text
        assert f"{published['lower']} to {published['upper']}" in text
    # the one- and two-year shares of the main analysis printed in the results table
    for window in doc["results"]["windows"]:
        for arm in ("treated", "comparison"):
            assert window[arm]["estimate"] in text


def test_no_small_counts_published(e2e):
    doc = json.loads((e2e["report_dir"] / "numbers.json").read_text())
    assert check_published_document(doc, DisclosurePolicy()) == []


def test_km_by_arm_matches_lifelines(e2e, e2e_con):
    from lifelines import KaplanMeierFitter

    from pipeline.analysis.frames import cohort_frame
    from pipeline.config import load_config

    cfg = load_config(e2e["settings"].config_file)
    frame = cohort_frame(e2e_con, e2e["extract_id"], cfg)
    km = e2e_con.execute("SELECT time, surv FROM analysis.km WHERE arm = 'treated' "
                         "ORDER BY time").df()
    sub = frame[frame["arm"] == "treated"]
    ref = KaplanMeierFitter().fit(sub["time_days"], sub["event"])
    expected = ref.survival_function_at_times(km["time"]).to_numpy()
    np.testing.assert_allclose(km["surv"], expected, atol=1e-12)


def test_report_is_deterministic(e2e, tmp_path):
    import duckdb

    from pipeline.config import load_config
    from pipeline.report.render import render_report

    cfg = load_config(e2e["settings"].config_file)
    con = duckdb.connect(str(e2e["settings"].warehouse), read_only=True)
    try:
        again = render_report(con, e2e["extract_id"], cfg, tmp_path / "again")
    finally:
        con.close()
    first = (e2e["report_dir"] / "numbers.json").read_bytes()
    assert (tmp_path / "again" / "numbers.json").read_bytes() == first
    assert pdf_text(again["pdf"]) == pdf_text(e2e["report_dir"] / "funder_report.pdf")
