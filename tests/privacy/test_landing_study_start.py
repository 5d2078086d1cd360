"""The landing scan (and so the sensor) refuses an extract extracted before the study start
(``study.first_index_date``) with a one-line reason, instead of starting a run that fails."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg

from pipeline.config import load_config
from pipeline.definitions import build_definitions, new_extract_sensor
from pipeline.landing import complete_extracts, landing_problems, scan_landing
from tests.conftest import make_settings


def _land(clean_extract: Path, landing: Path, extraction_date: dt.date | None) -> Path:
    folder = Path(shutil.copytree(clean_extract, landing / clean_extract.name))
    if extraction_date is not None:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["extraction_date"] = extraction_date.isoformat()
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_scan_refuses_an_extraction_date_before_the_study_start(clean_extract, tmp_path):
    settings = make_settings(tmp_path)
    start = load_config(settings.config_file).first_index_date
    _land(clean_extract, settings.landing_dir, start - dt.timedelta(days=1))
    found, problems = scan_landing(settings.landing_dir, config_file=settings.config_file)
    assert found == []
    assert len(problems) == 1 and "\n" not in problems[0]
    assert f"before the study start ({start})" in problems[0]
    assert complete_extracts(settings.landing_dir, start) == []
    assert landing_problems(settings.landing_dir, start) == problems
    # the study start itself is allowed, and an explicit earlier start lets it through
    assert complete_extracts(settings.landing_dir, start - dt.timedelta(days=1)) != []


def test_scan_accepts_an_extract_inside_the_study_period(clean_extract, tmp_path):
    settings = make_settings(tmp_path)
    _land(clean_extract, settings.landing_dir, None)
    found, problems = scan_landing(settings.landing_dir)  # the environment's configuration
    assert [e.extract_id for e in found] == [clean_extract.name] and problems == []


def test_sensor_registers_no_extract_from_before_the_study_start(clean_extract, tmp_path):
    settings = make_settings(tmp_path)
    start = load_config(settings.config_file).first_index_date
    _land(clean_extract, settings.landing_dir, dt.date(start.year - 1, 1, 31))
    with dg.instance_for_test() as instance:
        defs = build_definitions(settings)
        ctx = dg.build_sensor_context(instance=instance,
                                      resources={"paths": defs.resources["paths"]})
        result = new_extract_sensor(ctx)
        assert isinstance(result, dg.SkipReason)
        assert instance.get_dynamic_partitions("extract") == []
