"""Dagster as evaluators expect it (issue 14.4, issue 11.4): in-process executor, schedule on as
the README says, descriptions, extraction-date partition order, alert log on failed runs and
checks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from pipeline.definitions import (
    build_definitions,
    check_failure_alert,
    new_extract_sensor,
    run_failure_alert,
)
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_job_and_ui_materialisations_run_in_process(tmp_path):
    """One DuckDB writer at a time: no per-step processes queueing on the file lock."""
    defs = build_definitions(make_settings(tmp_path))
    assert defs.resolve_job_def("evaluate_extract").executor_def.name == "in_process"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"


def test_schedule_state_agrees_with_readme(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    schedule = defs.resolve_schedule_def("monthly_evaluation")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    text = " ".join(README.read_text().split())
    assert "`monthly_evaluation` is on by default" in text


def test_sensors_and_schedule_have_descriptions(tmp_path):
    defs = build_definitions(make_settings(tmp_path))
    names = ["new_extract_sensor", "run_failure_alert", "check_failure_alert"]
    for name in names:
        sensor = defs.resolve_sensor_def(name)
        assert sensor.description and len(sensor.description) > 30
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert len(defs.resolve_schedule_def("monthly_evaluation").description or "") > 30


def test_sensor_registers_extracts_in_extraction_date_order(tmp_path):
    """Dynamic partitions list in insertion order: add them oldest extraction first, even when
    the ids sort the other way (s42 before s7)."""
    settings = make_settings(tmp_path)
    later = write_extract(generate(SynthParams(n_people=200, seed=7,
                                               extraction_date=dt.date(2026, 10, 31))),
                          settings.landing_dir, settings.truth_dir)
    earlier = write_extract(generate(SynthParams(n_people=200, seed=42,
                                                 extraction_date=dt.date(2026, 9, 30))),
                            settings.landing_dir, settings.truth_dir)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance,
                                      resources={"paths": defs.resources["paths"]})
        result = new_extract_sensor(ctx)
    added = result.dynamic_partitions_requests[0].partition_keys
    assert list(added) == [earlier.name, later.name]
    assert [r.partition_key for r in result.run_requests] == [earlier.name, later.name]


@dg.asset
def _weighed() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="balance", passed=False,
                            severity=dg.AssetCheckSeverity.WARN)])



_weighed = dg.asset(check_specs=[dg.AssetCheckSpec("balance", asset="weighed")],
                    name="weighed")(_weighed.op.compute_fn.decorated_fn)


@dg.asset
def broken() -> None:
    raise ValueError("boom")


def _run(instance, asset) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], instance=instance, raise_on_error=False)


@pytest.fixture
def alert_log(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "alerts.log"
    monkeypatch.setenv("STALKING_EVAL_ALERT_LOG", str(path))
    return path


def test_a_failed_run_appends_one_line_per_failed_step(alert_log):
    with dg.instance_for_test() as instance:
        result = _run(instance, broken)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events
                       if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        ctx = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=run,
            dagster_event=failure).for_run_failure()
        run_failure_alert(ctx)
    lines = alert_log.read_text().splitlines()
    assert len(lines) == 1
    assert re.search(rf"\trun_failed\trun={result.run_id}\tstep=broken$", lines[0])
    assert "boom" not in alert_log.read_text()  # the error text stays in the run's log


def test_a_failed_warning_check_of_a_successful_run_is_alerted(alert_log):
    with dg.instance_for_test() as instance:
        result = _run(instance, _weighed)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        success = next(e for e in result.all_events
                       if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
        ctx = dg.build_run_status_sensor_context(
            sensor_name="check_failure_alert", dagster_instance=instance, dagster_run=run,
            dagster_event=success)
        check_failure_alert(ctx)
    lines = alert_log.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"\tcheck_failed\trun={result.run_id}\tcheck=weighed:balance (WARN)")
