"""Dagster wiring: definitions load, the sensor starts one run per new complete extract."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import dagster as dg

from pipeline.definitions import build_definitions, monthly_evaluation, new_extract_sensor
from pipeline.landing import landing_problems
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings

EXPECTED_ASSETS = {
    *(f"{layer}_{t}" for layer in ("raw", "staged") for t in (
        "police_persons", "police_offences", "clinic_referrals", "clinic_sessions")),
    "linked_persons", "evaluation_cohort", "survival_estimates", "funder_report"}


def test_definitions_load(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert EXPECTED_ASSETS <= keys
    job = defs.resolve_job_def("evaluate_extract")
    assert job.partitions_def is not None
    assert defs.resolve_sensor_def("new_extract_sensor") is not None
    assert defs.resolve_schedule_def("monthly_evaluation").cron_schedule == "0 6 3 * *"


def _sensor_run(instance, settings):
    defs = build_definitions(settings)
    paths = defs.resources["paths"]
    ctx = dg.build_sensor_context(instance=instance, resources={"paths": paths})
    return new_extract_sensor(ctx)


def test_sensor_one_run_per_new_complete_extract(tmp_path):
    with dg.instance_for_test() as instance:
        _sensor_checks(instance, make_settings(tmp_path))


def _sensor_checks(instance, settings):
    # nothing landed yet
    assert isinstance(_sensor_run(instance, settings), dg.SkipReason)
    a = write_extract(generate(SynthParams(n_people=200, seed=1)), settings.landing_dir,
                      settings.truth_dir)
    b = write_extract(generate(SynthParams(n_people=200, seed=2)), settings.landing_dir,
                      settings.truth_dir)
    # an incomplete folder: files without a manifest, and a manifest naming a missing file
    (settings.landing_dir / "partial").mkdir()
    (settings.landing_dir / "partial" / "police_persons.csv").write_text("person_key\n")
    broken = settings.landing_dir / "broken"
    broken.mkdir()
    manifest = json.loads((a / "manifest.json").read_text())
    manifest["extract_id"] = "broken"
    (broken / "manifest.json").write_text(json.dumps(manifest))

    result = _sensor_run(instance, settings)
    assert isinstance(result, dg.SensorResult)
    assert sorted(r.partition_key for r in result.run_requests) == sorted([a.name, b.name])
    assert len({r.run_key for r in result.run_requests}) == 2
    added = result.dynamic_partitions_requests[0].partition_keys
    assert sorted(added) == sorted([a.name, b.name])

    instance.add_dynamic_partitions("extract", list(added))
    # the same extracts again: no new run
    assert isinstance(_sensor_run(instance, settings), dg.SkipReason)
    c = write_extract(generate(SynthParams(n_people=200, seed=3)), settings.landing_dir,
                      settings.truth_dir)
    again = _sensor_run(instance, settings)
    assert [r.partition_key for r in again.run_requests] == [c.name]


def test_monthly_schedule_targets_newest_registered_extract(tmp_path):
    settings = make_settings(tmp_path)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(instance=instance,
                                        resources={"paths": defs.resources["paths"]})
        _schedule_checks(ctx, instance, settings)


def _schedule_checks(ctx, instance, settings):
    assert isinstance(monthly_evaluation(ctx), dg.SkipReason)
    old = write_extract(generate(SynthParams(n_people=200, seed=1,
                                             extraction_date=dt.date(2026, 9, 30))),
                        settings.landing_dir, settings.truth_dir)
    new = write_extract(generate(SynthParams(n_people=200, seed=1)), settings.landing_dir,
                        settings.truth_dir)
    instance.add_dynamic_partitions("extract", [old.name, new.name])
    request = monthly_evaluation(ctx)
    assert request.partition_key == new.name


def test_sensor_registers_no_unsafe_landing_folder(tmp_path):
    """Symbolic links, invalid folder names, a manifest naming another id or listing a file
    outside the specification: nothing is registered and each is logged in one line."""
    settings = make_settings(tmp_path)
    good = write_extract(generate(SynthParams(n_people=200, seed=1)), tmp_path / "elsewhere",
                         settings.truth_dir)
    landing = settings.landing_dir
    landing.mkdir(parents=True)
    os.symlink(good, landing / good.name)  # a linked folder
    shutil.copytree(good, landing / "bad name!")  # not a valid extract id
    shutil.copytree(good, landing / "other-id")  # manifest names another id
    escape = Path(shutil.copytree(good, landing / good.name.replace("s1", "s1x")))
    manifest = json.loads((escape / "manifest.json").read_text())
    manifest["extract_id"] = escape.name
    manifest["files"]["../../x.csv"] = manifest["files"]["police_persons.csv"]
    shutil.copy(escape / "police_persons.csv", tmp_path / "x.csv")
    (escape / "manifest.json").write_text(json.dumps(manifest))
    problems = landing_problems(landing)
    assert len(problems) == 4 and all("\n" not in p for p in problems)
    assert any("not in the specification" in p for p in problems)
    assert any("differs from the folder name" in p for p in problems)
    with dg.instance_for_test() as instance:
        result = _sensor_run(instance, settings)
        assert isinstance(result, dg.SkipReason)
        assert instance.get_dynamic_partitions("extract") == []
