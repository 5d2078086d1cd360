"""Dagster wiring: assets, checks, the evaluation job, the landing sensor and the monthly schedule.

``workspace.yaml`` points here; ``dagster dev`` and ``python -m pipeline`` use the same objects.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

import assets.analysis
import assets.comparison
import assets.history
import assets.ingest
import assets.report
from assets.common import EXTRACTS, ProjectPaths
from pipeline.landing import complete_extracts, scan_landing
from pipeline.settings import Settings

ASSET_MODULES = [assets.ingest, assets.analysis, assets.comparison, assets.history,
                 assets.report]

evaluate_extract = dg.define_asset_job(
    "evaluate_extract", selection=dg.AssetSelection.all(), partitions_def=EXTRACTS,
    description="Ingest, validate, analyse and report one delivered extract.")


@dg.sensor(job=evaluate_extract, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING)
def new_extract_sensor(context: dg.SensorEvaluationContext,
                       paths: ProjectPaths) -> dg.SensorResult | dg.SkipReason:
    """Start exactly one run for each complete extract not yet seen in the landing folder.

    Only folders that pass ``scan_landing`` (valid id = folder name = manifest id, no symbolic
    links, a sound manifest) are registered; the others are logged, one line each, no values.
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


@dg.schedule(job=evaluate_extract, cron_schedule="0 6 3 * *", execution_timezone="Europe/London")
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


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All Dagster objects, with resources taken from ``settings`` (default: the environment)."""
    settings = settings or Settings.from_env()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[evaluate_extract], sensors=[new_extract_sensor], schedules=[monthly_evaluation],
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse)),
                   "paths": ProjectPaths.from_settings(settings)})


defs = build_definitions()
