"""Dagster wiring: assets, checks, the evaluation job, the landing sensor, the monthly schedule
and the alert sensors.

``workspace.yaml`` points here; ``dagster dev`` and ``python -m pipeline`` use the same objects.

One DuckDB writer at a time by design: DuckDB lets one process write a file, so the job and every
UI-launched materialisation run all steps in the run's own process (``in_process_executor``);
the default multiprocess executor would start one process per step and make them queue on the
file lock (issue 11: minutes instead of seconds).
"""

import datetime as dt
import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

import assets.analysis
import assets.comparison
import assets.history
import assets.ingest
import assets.report
import assets.snapshot
from assets.common import EXTRACTS, ProjectPaths
from pipeline.landing import complete_extracts, scan_landing
from pipeline.settings import Settings

ASSET_MODULES = [assets.ingest, assets.analysis, assets.comparison, assets.history,
                 assets.report, assets.snapshot]

evaluate_extract = dg.define_asset_job(
    "evaluate_extract", selection=dg.AssetSelection.all(), partitions_def=EXTRACTS,
    description="Ingest, validate, analyse and report one delivered extract.",
    executor_def=dg.in_process_executor)


@dg.sensor(job=evaluate_extract, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: register each new complete landing folder as an extract "
           "partition (oldest extraction date first) and start exactly one run for it.")
def new_extract_sensor(context: dg.SensorEvaluationContext,
                       paths: ProjectPaths) -> dg.SensorResult | dg.SkipReason:
    """Start exactly one run for each complete extract not yet seen in the landing folder.

    Only folders that pass ``scan_landing`` (valid id = folder name = manifest id, no symbolic
    links, a sound manifest) are registered; the others are logged, one line each, no values.
    Dynamic partitions list in the order they were added, so new extracts are added oldest
    extraction date first (``scan_landing`` sorts them): the UI lists partitions in extraction
    order as long as extracts arrive in that order.
    """
    known = set(context.instance.get_dynamic_partitions(EXTRACTS.name))
    landed, problems = scan_landing(paths.landing_dir)
    for problem in problems:
        context.log.warning(f"landing folder not registered: {problem}")
    new = [e for e in landed if e.extract_id not in known]
    if not new:
        return dg.SkipReason("no new complete extract in the landing folder")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=e.extract_id,
                                    run_key=f"{e.extract_id}:{e.fingerprint}") for e in new],
        dynamic_partitions_requests=[EXTRACTS.build_add_request([e.extract_id for e in new])])


@dg.schedule(job=evaluate_extract, cron_schedule="0 6 3 * *", execution_timezone="Europe/London",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="06:00 on the 3rd of each month (London): re-run the newest registered "
             "extract so the funder report is refreshed monthly. On by default (README).")
def monthly_evaluation(context: dg.ScheduleEvaluationContext,
                       paths: ProjectPaths) -> dg.RunRequest | dg.SkipReason:
    """On the 3rd of each month, re-run the newest complete extract (fresh report, same data)."""
    landed = complete_extracts(paths.landing_dir)
    known = set(context.instance.get_dynamic_partitions(EXTRACTS.name))
    landed = [e for e in landed if e.extract_id in known]
    if not landed:
        return dg.SkipReason("no registered extract yet: the landing sensor registers them")
    latest = landed[-1]
    return dg.RunRequest(partition_key=latest.extract_id,
                         tags={"trigger": "monthly", "extract_id": latest.extract_id})


def alert_log() -> Path:
    """Where alerts are appended: ``STALKING_EVAL_ALERT_LOG``, else ``$DAGSTER_HOME/alerts.log``."""
    explicit = os.environ.get("STALKING_EVAL_ALERT_LOG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("DAGSTER_HOME", "data/dagster_home")) / "alerts.log"


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """``asset:check (SEVERITY)`` for each failed asset check of a run; names only, no values."""
    found = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if not evaluation.passed:
            found.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                         f"({evaluation.severity.value})")
    return found


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Step keys that failed in a run (the run may fail before any step: then none)."""
    return [e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            if e.step_key]


def alert_lines(instance: dg.DagsterInstance, run_id: str, run_failed: bool) -> list[str]:
    """One line per failure of a run: the run, then each failed step and failed check."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = [f"{stamp}\trun_failed\trun={run_id}\tstep={step}"
             for step in failed_steps(instance, run_id)]
    if run_failed and not lines:
        lines.append(f"{stamp}\trun_failed\trun={run_id}\tstep=-")
    lines += [f"{stamp}\tcheck_failed\trun={run_id}\tcheck={check}"
              for check in failed_checks(instance, run_id)]
    return lines


def append_alerts(lines: list[str]) -> None:
    """Append alert lines to the alert log (created on first use)."""
    if not lines:
        return
    path = alert_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


@dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Append one line per failed run, step and check (run id, "
                       "step, check name; never data) to $DAGSTER_HOME/alerts.log.")
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Alert on a failed run: its failed steps and failed checks, one line each."""
    append_alerts(alert_lines(context.instance, context.dagster_run.run_id, run_failed=True))


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="check_failure_alert",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Append one line per failed (warning) asset check of a "
                      "successful run to $DAGSTER_HOME/alerts.log.")
def check_failure_alert(context: dg.RunStatusSensorContext) -> None:
    """A run can succeed with failed WARN checks (balance, for example): alert on those."""
    append_alerts(alert_lines(context.instance, context.dagster_run.run_id, run_failed=False))


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All Dagster objects, with resources taken from ``settings`` (default: the environment)."""
    settings = settings or Settings.from_env()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[evaluate_extract], schedules=[monthly_evaluation],
        sensors=[new_extract_sensor, run_failure_alert, check_failure_alert],
        executor=dg.in_process_executor,  # also for assets materialised from the UI graph
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse)),
                   "paths": ProjectPaths.from_settings(settings)})


defs = build_definitions()
