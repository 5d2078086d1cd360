"""The command line tells the cause (issue 14.1): root cause in one line, configuration refused
before anything starts, a check summary with documented exit codes, help with examples under the
right name, and a run stopped by SIGTERM ends within seconds with nothing published."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipeline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_WARNINGS,
    _check_summary,
    build_parser,
    exit_code,
    root_cause,
    run_extract,
)
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def _deep_failure() -> None:
    try:
        raise KeyError("inner")
    except KeyError as exc:
        raise ValueError("'analysis.min_treated' must be int, got str") from exc


@dg.asset
def wrapped() -> None:
    _deep_failure()


def test_root_cause_is_the_innermost_exception_in_one_line():
    with dg.instance_for_test() as instance:
        result = dg.materialize([wrapped], instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_failure and e.step_key)
    error = failure.event_specific_data.error
    assert "Error occurred while executing" in error.message  # Dagster's wrapper ...
    assert root_cause(error) == "KeyError: 'inner'"  # ... and the cause under it


def test_root_cause_drops_dagster_failure_prefix_and_module_paths():
    from dagster._utils.error import SerializableErrorInfo

    def info(message, cause=None):
        return SerializableErrorInfo(message=message, stack=[], cls_name="X", cause=cause)

    failure = info("dagster._core.definitions.events.Failure: police_persons.csv: refused "
                   "by the identifier guard\n")
    assert root_cause(failure) == "police_persons.csv: refused by the identifier guard"
    config = info('dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred '
                  'while executing op "x":\n',
                  info("pipeline.config.ConfigError: cfg.yaml: 'a.b' must be int,\n got str\n"))
    assert root_cause(config) == "ConfigError: cfg.yaml: 'a.b' must be int, got str"


def test_invalid_configuration_is_refused_before_anything_starts(tmp_path, capsys):
    settings = make_settings(tmp_path)
    bad = tmp_path / "evaluation.yaml"
    text = settings.config_file.read_text()
    assert "min_treated: 60" in text
    bad.write_text(text.replace("min_treated: 60", "min_treated: sixty"))
    settings = settings.__class__(**{**settings.__dict__, "config_file": bad})
    write_extract(generate(SynthParams(n_people=200, seed=3)), settings.landing_dir,
                  settings.truth_dir)
    with dg.instance_for_test() as instance:
        outcome = run_extract("synthetic-2026-10-s3", settings, instance=instance)
        assert instance.get_dynamic_partitions("extract") == []
        assert instance.get_runs() == []
    err = capsys.readouterr().err.strip().splitlines()
    assert not outcome and outcome.exit_code == EXIT_REFUSED
    assert len(err) == 1 and err[0].startswith("refused: configuration")
    assert "'analysis.min_treated' must be int" in err[0]
    assert not settings.warehouse.exists()


def test_unknown_extract_is_refused_with_exit_code_2(tmp_path, capsys):
    settings = make_settings(tmp_path)
    settings.landing_dir.mkdir(parents=True)
    with dg.instance_for_test() as instance:
        outcome = run_extract("nosuch-extract", settings, instance=instance)
        assert instance.get_dynamic_partitions("extract") == []
    assert outcome.exit_code == EXIT_REFUSED
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@dg.asset(check_specs=[dg.AssetCheckSpec("balance", asset="checked"),
                       dg.AssetCheckSpec("sizes", asset="checked"),
                       dg.AssetCheckSpec("adds_up", asset="checked")])
def checked() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="balance", passed=False,
                            severity=dg.AssetCheckSeverity.WARN),
        dg.AssetCheckResult(check_name="sizes", passed=False),
        dg.AssetCheckResult(check_name="adds_up", passed=True)])


def test_check_summary_names_failed_and_warned_checks():
    with dg.instance_for_test() as instance:
        result = dg.materialize([checked], instance=instance, raise_on_error=False)
    failed, warned, n = _check_summary(result)
    assert (failed, warned, n) == (["checked:sizes"], ["checked:balance"], 3)


@pytest.mark.parametrize(("success", "failed", "warned", "code"), [
    (True, [], [], EXIT_OK), (True, [], ["a:b"], EXIT_WARNINGS),
    (True, ["a:c"], ["a:b"], EXIT_FAILED), (False, [], [], EXIT_FAILED)])
def test_exit_codes(success, failed, warned, code):
    assert exit_code(success, failed, warned) == code


def test_help_has_examples_and_calls_itself_by_its_entry_point():
    main_help = build_parser("stalking-eval").format_help()
    assert main_help.startswith("usage: stalking-eval")
    assert "stalking-eval run " in main_help and "exit codes:" in main_help
    assert "python -m pipeline" not in main_help
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: python -m pipeline run")
    assert "examples:" in out and "python -m pipeline run synthetic-" in out
    assert "3  finished, but a warning check failed" in out
    for command in ("demo", "extracts", "purge"):
        sub = build_parser("stalking-eval")._subparsers._group_actions[0].choices[command]
        assert "stalking-eval " + command in sub.format_help().split("example", 1)[1]


def _read_line(stream, deadline: float) -> str:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready:
            return stream.readline()
    raise AssertionError("no progress line before the deadline")


@pytest.mark.slow
def test_sigterm_stops_a_run_within_seconds_and_publishes_nothing(tmp_path):
    params = SynthParams(n_people=600, seed=11)
    write_extract(generate(params), tmp_path / "landing", tmp_path / "truth")
    env = {**os.environ, "STALKING_EVAL_DATA": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", params.extract_id],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = _read_line(proc.stderr, time.monotonic() + 180)
        assert " done in " in line  # a progress line as the first step finishes
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = proc.stderr.read().strip().splitlines()
    assert rc == 128 + signal.SIGTERM and took < 5
    assert rest[-1].startswith("stopped by SIGTERM: run ")
    assert "Traceback" not in "\n".join(rest)
    reports = tmp_path / "reports"
    assert not list(reports.rglob("funder_report.pdf")) if reports.exists() else True
    assert not [p for p in reports.glob(".*")] if reports.exists() else True
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.CANCELED
    import duckdb

    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()  # opens: nothing corrupt
    shutil.rmtree(tmp_path / "dagster_home", ignore_errors=True)


def test_readme_documents_the_exit_codes():
    text = (ROOT / "README.md").read_text()
    for code in (EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_WARNINGS):
        assert f"\n| {code} | " in text
    assert "| 130 / 143 |" in text


def test_progress_line_names_step_time_and_rows():
    @dg.asset
    def counted() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/row_count": 1234})

    from pipeline.cli import _row_count, _step_done

    with dg.instance_for_test() as instance:
        result = dg.materialize([counted], instance=instance)
    mat = next(e for e in result.all_events
               if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION)
    done = next(e for e in result.all_events
                if e.event_type == dg.DagsterEventType.STEP_SUCCESS)
    line = _step_done(done, time.perf_counter(), _row_count(mat))
    assert re.fullmatch(r"\[ +\d+\.\d s\] counted done in \d+\.\d s, 1,234 rows", line)


def test_demo_runs_successive_monthly_extracts_oldest_first(monkeypatch, tmp_path, capsys):
    """``demo --months 3`` writes three month-end extracts of one world and runs them in
    extraction-date order (the run itself is stubbed: each costs a whole pipeline run)."""
    from pipeline import cli

    assert cli.build_parser().parse_args(["demo", "--months", "3"]).months == 3
    monkeypatch.setenv("STALKING_EVAL_DATA", str(tmp_path))
    ran = []

    class Done:
        exit_code = cli.EXIT_OK

    monkeypatch.setattr(cli, "run_extract", lambda eid, settings, progress: ran.append(eid)
                        or Done())
    assert cli.main(["demo", "--people", "300", "--months", "3"]) == cli.EXIT_OK
    assert len(ran) == 3 and ran[-1] == "synthetic-2026-10-s42"
    dates = [json.loads((tmp_path / "landing" / e / "manifest.json").read_text())
             ["extraction_date"] for e in ran]
    assert dates == sorted(dates) and len(set(dates)) == 3
