"""Command line: ``python -m pipeline demo | run EXTRACT_ID | extracts | purge EXTRACT_ID``.

``demo`` generates a synthetic extract (if it is not already in the landing folder), runs every
asset for it through Dagster with a persistent instance (so ``make dev`` shows the run) and
prints where the PDF is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipeline.settings import Settings


def _instance(settings: Settings):
    import dagster as dg

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def preflight(extract_id: str, settings: Settings) -> str | None:
    """Why an extract cannot be run, as one line, or None; checked before anything is
    registered or written: a valid extract id naming a real landing folder (no symbolic link,
    inside the landing folder) whose manifest is sound, names the same id and has an
    extraction date inside the study period."""
    from pipeline.config import load_config
    from pipeline.extract_format import check_extract_id, inside
    from pipeline.ingest.errors import ExtractError
    from pipeline.ingest.manifest import check_study_window, read_manifest

    try:
        folder = inside(settings.landing_dir, check_extract_id(extract_id), "landing folder")
        if not folder.is_dir():
            return (f"refused: no landing folder {settings.landing_dir / extract_id}; deliver "
                    "the extract there (python -m pipeline extracts lists what is ready)")
        manifest = read_manifest(folder)
        check_study_window(manifest, load_config(settings.config_file).first_index_date)
    except ExtractError as exc:
        return f"refused: {exc}" if not str(exc).startswith("refused") else str(exc)
    return None


def run_extract(extract_id: str, settings: Settings, instance=None) -> bool:
    """Materialise every asset for one extract in-process; True if the run succeeded.

    ``instance`` defaults to the persistent one under DAGSTER_HOME (what ``make dev`` shows).
    """
    from pipeline.definitions import EXTRACTS, build_definitions

    problem = preflight(extract_id, settings)
    if problem:
        print(problem, file=sys.stderr)
        return False
    defs = build_definitions(settings)
    instance = instance or _instance(settings)
    instance.add_dynamic_partitions(EXTRACTS.name, [extract_id])
    job = defs.resolve_job_def("evaluate_extract")
    # Dagster's own console output is silenced; failures are printed below as one line each
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    result = job.execute_in_process(partition_key=extract_id, instance=instance,
                                    raise_on_error=False, run_config=quiet)
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                error = event.event_specific_data.error  # type: ignore[union-attr]
                line = error.message.strip().splitlines()[-1]
                if line.startswith("dagster."):  # "dagster...Failure: <our one-line message>"
                    line = line.split(": ", 1)[-1]
                print(f"FAILED {event.step_key}: {line}", file=sys.stderr)
    return result.success


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    settings = Settings.from_env()
    params = SynthParams(n_people=args.people, seed=args.seed)
    folder = settings.landing_dir / params.extract_id
    t0 = time.perf_counter()
    if not (folder / "manifest.json").exists():
        write_extract(generate(params), settings.landing_dir, settings.truth_dir)
        print(f"generated synthetic extract {folder} in {time.perf_counter() - t0:.1f} s")
    t1 = time.perf_counter()
    ok = run_extract(params.extract_id, settings)
    print(f"materialised all assets for {params.extract_id} in {time.perf_counter() - t1:.1f} s")
    if not ok:
        return 1
    print(f"funder report: {settings.reports_dir / params.extract_id / 'funder_report.pdf'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    ok = run_extract(args.extract_id, settings)
    if ok:
        print(f"funder report: {settings.reports_dir / args.extract_id / 'funder_report.pdf'}")
    return 0 if ok else 1


def cmd_extracts(_: argparse.Namespace) -> int:
    from pipeline.landing import complete_extracts

    for e in complete_extracts(Settings.from_env().landing_dir):
        print(f"{e.extract_id}\t{e.extraction_date}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Remove an extract everywhere, after a confirmation (``--yes`` skips it)."""
    from pipeline.extract_format import check_extract_id
    from pipeline.ingest.errors import ExtractError
    from pipeline.ingest.purge import purge_dagster, purge_reports, purge_warehouse

    settings = Settings.from_env()
    try:
        extract_id = check_extract_id(args.extract_id)
    except ExtractError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not args.yes:
        print(f"This removes every row of extract {extract_id} from {settings.warehouse}, its "
              f"reports under {settings.reports_dir} and its Dagster runs and partition. The "
              "landing folder is left alone.")
        if input("Type the extract id to confirm: ").strip() != extract_id:
            print("not confirmed; nothing removed", file=sys.stderr)
            return 1
    import duckdb

    from pipeline.definitions import EXTRACTS

    try:
        rows = purge_warehouse(settings.warehouse, extract_id)
    except duckdb.IOException:
        print(f"{settings.warehouse}: the warehouse is open in another process (make dev, a "
              "notebook); close it and purge again; nothing removed", file=sys.stderr)
        return 1
    reports = purge_reports(settings.reports_dir, extract_id)
    runs, partition = purge_dagster(_instance(settings), EXTRACTS.name, extract_id)
    print(f"purged {extract_id}: {sum(rows.values())} rows from {len(rows)} tables, "
          f"reports {'removed' if reports else 'none'}, {runs} Dagster run(s), partition "
          f"{'removed' if partition else 'not registered'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Stalking treatment evaluation pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate a synthetic extract and run everything")
    demo.add_argument("--people", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser("run", help="run every asset for an extract in the landing folder")
    run.add_argument("extract_id")
    run.set_defaults(func=cmd_run)
    ext = sub.add_parser("extracts", help="list complete extracts in the landing folder")
    ext.set_defaults(func=cmd_extracts)
    purge = sub.add_parser("purge", help="remove an extract's rows, reports and run history")
    purge.add_argument("extract_id")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=cmd_purge)
    args = parser.parse_args(argv)
    return args.func(args)
