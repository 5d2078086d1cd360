"""Shared fixtures: a small synthetic extract run end to end once per test session (per worker)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import Settings


def make_settings(root: Path) -> Settings:
    """Settings whose every folder lies under ``root`` (tests never touch the demo data)."""
    return Settings(data_dir=root, landing_dir=root / "landing", truth_dir=root / "truth",
                    warehouse=root / "warehouse.duckdb", reports_dir=root / "reports",
                    config_file=Path(__file__).resolve().parent.parent / "config"
                    / "evaluation.yaml")


def fast_settings(root: Path, replicates: int = 20) -> Settings:
    """``make_settings`` with the default configuration but fewer bootstrap resamples (they
    only give the bands of weighted curves): the same code paths at a tenth of the cost."""
    settings = make_settings(root)
    text = settings.config_file.read_text()
    assert "bootstrap_replicates: 200" in text
    config = root / "evaluation.yaml"
    config.write_text(text.replace("bootstrap_replicates: 200",
                                   f"bootstrap_replicates: {replicates}"))
    return dataclasses.replace(settings, config_file=config)


@pytest.hookimpl(tryfirst=True)  # before xdist's, which turns the marks into worker groups
def pytest_collection_modifyitems(config, items) -> None:
    """Keep what shares an expensive fixture on one xdist worker (``--dist loadgroup``): the
    session-wide end-to-end run in one group, every other module in its own group, so that no
    whole-pipeline fixture is built twice."""
    for item in items:
        group = "e2e" if "e2e" in getattr(item, "fixturenames", ()) else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def e2e(tmp_path_factory) -> dict:
    """Generate 1,500 people, materialise every asset through Dagster, return paths and ids."""
    import dagster as dg

    from pipeline.cli import run_extract
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    root = tmp_path_factory.mktemp("e2e")
    settings = fast_settings(root)
    params = SynthParams(n_people=1500, seed=7, extraction_date=dt.date(2026, 10, 31))
    write_extract(generate(params), settings.landing_dir, settings.truth_dir)
    with dg.instance_for_test() as instance:
        ok = run_extract(params.extract_id, settings, instance=instance)
    return {"ok": ok, "settings": settings, "extract_id": params.extract_id,
            "report_dir": settings.reports_dir / params.extract_id}


@pytest.fixture()
def e2e_con(e2e):
    con = duckdb.connect(str(e2e["settings"].warehouse), read_only=True)
    yield con
    con.close()
