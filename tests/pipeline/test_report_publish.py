"""The funder report is published only after the disclosure check passes (issue 14.4): rendered
into a staging folder, checked, then moved into place; a failing check leaves the previous
report untouched and no staging folder behind."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

import assets.report as report
from assets.common import ProjectPaths
from tests.conftest import make_settings

EXTRACT = "synthetic-2026-10-s1"


def _fake_render(con, extract_id, cfg, folder):
    """What render_report leaves in its folder: numbers, a figure, the template and the PDF."""
    (folder / "numbers.json").write_text("{}\n")
    (folder / "km.png").write_bytes(b"new figure")
    (folder / "funder_report.pdf").write_bytes(b"%PDF new")
    return {"pdf": folder / "funder_report.pdf", "numbers": {"status": "ok"}}


@pytest.fixture
def published(tmp_path, monkeypatch):
    settings = make_settings(tmp_path)
    folder = settings.reports_dir / EXTRACT
    folder.mkdir(parents=True)
    (folder / "funder_report.pdf").write_bytes(b"%PDF old")
    (folder / "forest.png").write_bytes(b"old figure")
    (folder / "data_quality.html").write_text("kept")
    monkeypatch.setattr(report, "render_report", _fake_render)

    def materialise(findings: list) -> dg.MaterializeResult:
        monkeypatch.setattr(report, "check_published_document", lambda doc, policy: findings)
        context = dg.build_asset_context(partition_key=EXTRACT)
        return report.funder_report(
            context, duckdb=DuckDBResource(database=str(settings.warehouse)),
            paths=ProjectPaths.from_settings(settings))

    return folder, materialise


def test_report_moves_into_place_after_the_check_passes(published):
    folder, materialise = published
    result = materialise([])
    assert (folder / "funder_report.pdf").read_bytes() == b"%PDF new"
    assert (folder / "km.png").exists() and not (folder / "forest.png").exists()
    assert (folder / "data_quality.html").read_text() == "kept"
    assert [p.name for p in folder.parent.iterdir()] == [EXTRACT]  # no staging folder left
    assert result.check_results[0].passed
    assert result.metadata["path"] == dg.MetadataValue.path(str(folder / "funder_report.pdf"))


def test_failed_disclosure_check_publishes_nothing(published):
    folder, materialise = published
    result = materialise([{"path": "cohort.treated_n"}])
    assert (folder / "funder_report.pdf").read_bytes() == b"%PDF old"
    assert (folder / "forest.png").exists() and not (folder / "km.png").exists()
    assert not (folder / "numbers.json").exists()
    assert [p.name for p in folder.parent.iterdir()] == [EXTRACT]
    assert not result.check_results[0].passed
    assert result.metadata["published"] is False and "path" not in result.metadata


def test_disclosure_check_blocks_and_exports_follow_the_history():
    spec = next(iter(report.funder_report.check_specs))
    assert spec.blocking
    deps = {k.to_user_string() for k in report.summary_exports.dependency_keys}
    assert "evaluation_history" in deps
    assert "evaluation_history" in {k.to_user_string()
                                     for k in report.funder_report.dependency_keys}
