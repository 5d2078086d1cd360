"""Command line: ``stalking-eval`` / ``python -m pipeline`` with ``demo | run EXTRACT_ID |
extracts | purge EXTRACT_ID``.

``demo`` generates a synthetic extract (if it is not already in the landing folder), runs every
asset for it through Dagster with a persistent instance (so ``make dev`` shows the run) and
prints where the PDF is. ``run`` validates configuration and extract before anything is
registered, prints each step as it finishes, one root-cause line per failure with the path of
the full log, and a summary of the asset checks; the exit code says how it ended (EXIT_*).
The Dagster run executes in a worker thread so that the main thread stays free to print
progress and to stop within seconds on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
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


EXIT_OK = 0  # every step and check passed
EXIT_FAILED = 1  # a step or an ERROR-severity check failed (nothing downstream of it ran)
EXIT_REFUSED = 2  # refused before starting: invalid configuration, extract id or landing folder
EXIT_WARNINGS = 3  # the run succeeded but a WARN-severity check failed (e.g. covariate balance)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT); 143 for SIGTERM (128 + signal number)


@dataclass
class RunOutcome:
    """How a run ended; truthy when every step succeeded (checks may still have warned)."""

    success: bool
    exit_code: int
    run_id: str | None = None
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.success


class Interrupted(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def preflight(extract_id: str, settings: Settings) -> str | None:
    """Why an extract cannot be run, as one line, or None; checked before anything is
    registered or written: a valid configuration (first, so that a typo is not found after
    minutes of ingest), a valid extract id naming a real landing folder (no symbolic link,
    inside the landing folder) whose manifest is sound, names the same id and has an
    extraction date inside the study period."""
    from pipeline.config import ConfigError, load_config
    from pipeline.extract_format import check_extract_id, inside
    from pipeline.ingest.errors import ExtractError
    from pipeline.ingest.manifest import check_study_window, read_manifest

    try:
        cfg = load_config(settings.config_file)
    except (ConfigError, OSError) as exc:
        return f"refused: configuration: {exc}"
    try:
        folder = inside(settings.landing_dir, check_extract_id(extract_id), "landing folder")
        if not folder.is_dir():
            return (f"refused: no landing folder {settings.landing_dir / extract_id}; deliver "
                    "the extract there (python -m pipeline extracts lists what is ready)")
        manifest = read_manifest(folder)
        check_study_window(manifest, cfg.first_index_date)
    except ExtractError as exc:
        return f"refused: {exc}" if not str(exc).startswith("refused") else str(exc)
    return None


def root_cause(error) -> str:
    """The innermost exception of a Dagster error chain as one line, without Dagster's wrapper
    ("Error occurred while executing op ...") or module paths."""
    while error.cause is not None:
        error = error.cause
    text = " ".join(line.strip() for line in error.message.strip().splitlines() if line.strip())
    kind, sep, message = text.partition(": ")
    if sep and " " not in kind and "." in kind:  # "pkg.module.Class: message"
        name = kind.rsplit(".", 1)[-1]
        text = message if name in ("Failure", "ExtractError") else f"{name}: {message}"
    return text


def _step_done(event, started: float, rows: int | None = None) -> str:
    """One progress line: elapsed time of the run, the step, its own duration, the row count
    of the table it wrote (Dagster's standard ``dagster/row_count``) when it has one."""
    seconds = getattr(event.event_specific_data, "duration_ms", None)
    took = f" in {seconds / 1000:.1f} s" if seconds is not None else ""
    state = "done" if event.event_type_value == "STEP_SUCCESS" else "FAILED"
    count = f", {rows:,} rows" if rows is not None else ""
    return f"[{time.perf_counter() - started:7.1f} s] {event.step_key} {state}{took}{count}"


def _row_count(event) -> int | None:
    """``dagster/row_count`` of a materialisation event, if the asset reports one."""
    value = event.event_specific_data.materialization.metadata.get("dagster/row_count")
    return getattr(value, "value", value)


def _execute(job, instance, extract_id: str, run_config: dict, progress: bool):
    """Run the job in a worker thread; the main thread prints progress and receives signals."""
    import dagster as dg
    from dagster._core.utils import make_new_run_id  # not exported at the top level

    run_id = make_new_run_id()
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = job.execute_in_process(
                partition_key=extract_id, instance=instance, raise_on_error=False,
                run_config=run_config, run_id=run_id)
        except BaseException as exc:  # re-raised in the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="dagster-run", daemon=True)
    started, seen = time.perf_counter(), 0
    kinds = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.ASSET_MATERIALIZATION}
    rows: dict[str, int | None] = {}
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            if progress and instance.has_run(run_id):
                events = [e.dagster_event for e in instance.all_logs(run_id, of_type=kinds)]
                for event in events[seen:]:
                    if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                        rows[event.step_key] = _row_count(event)
                    else:
                        line = _step_done(event, started, rows.get(event.step_key))
                        sys.stderr.write(line + "\n")  # one write: no interleaving
                        sys.stderr.flush()
                seen = len(events)
    except Interrupted as stop:
        _abandon(instance, run_id, stop.signum)
    if "error" in box:
        raise box["error"]
    return box["result"]


def _abandon(instance, run_id: str, signum: int) -> None:
    """Stop now: record the run as cancelled and exit without waiting for the worker thread.

    DuckDB writes are transactions (an uncommitted one is discarded on the next open) and the
    funder report is published by moving finished files into place, so nothing half-written
    remains; the interrupted extract is simply run again."""
    try:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_canceled(run, message=f"stopped by {signal.Signals(signum).name}")
    finally:
        print(f"stopped by {signal.Signals(signum).name}: run {run_id} cancelled; nothing was "
              "published; run the extract again to complete it", file=sys.stderr, flush=True)
        os._exit(128 + signum)


def _write_full_log(instance, result) -> Path | None:
    """Every failure of a run with its full chained traceback, in one text file."""
    failures = [e for e in result.all_events if e.is_failure and e.step_key]
    if not failures:
        return None
    path = Path(instance.root_directory) / "logs" / f"{result.run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"== {e.step_key}\n{e.event_specific_data.error.to_string()}\n"
                            for e in failures))
    return path


def _check_summary(result) -> tuple[list[str], list[str], int]:
    """(failed ERROR checks, failed WARN checks, number of checks evaluated), names only."""
    failed, warned = [], []
    evaluations = result.get_asset_check_evaluations()
    for ev in evaluations:
        if not ev.passed:
            name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
            (warned if ev.severity.value == "WARN" else failed).append(name)
    return failed, warned, len(evaluations)


def run_extract(extract_id: str, settings: Settings, instance=None,
                progress: bool = False) -> RunOutcome:
    """Materialise every asset for one extract in-process; the outcome is truthy on success.

    Failures print one line each (the root cause) plus where the full log is; a summary of
    the asset checks follows. ``instance`` defaults to the persistent one under DAGSTER_HOME
    (what ``make dev`` shows); ``progress`` prints a line on stderr as each step finishes.
    """
    problem = preflight(extract_id, settings)
    if problem:
        print(problem, file=sys.stderr)
        return RunOutcome(False, EXIT_REFUSED)
    from pipeline.definitions import EXTRACTS, build_definitions

    defs = build_definitions(settings)
    instance = instance or _instance(settings)
    instance.add_dynamic_partitions(EXTRACTS.name, [extract_id])
    job = defs.resolve_job_def("evaluate_extract")
    # Dagster's own console output is silenced; failures are printed below as one line each
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    result = _execute(job, instance, extract_id, quiet, progress)
    for event in result.all_events:
        if event.is_failure and event.step_key:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            print(f"FAILED {event.step_key}: {root_cause(error)}", file=sys.stderr)
    log = _write_full_log(instance, result)
    if log:
        print(f"full log: {log} (run {result.run_id} in the Dagster UI)", file=sys.stderr)
    failed, warned, n = _check_summary(result)
    print(f"checks: {n - len(failed) - len(warned)} passed, {len(failed)} failed"
          f"{' (' + ', '.join(failed) + ')' if failed else ''}, {len(warned)} warned"
          f"{' (' + ', '.join(warned) + ')' if warned else ''}", file=sys.stderr)
    code = exit_code(result.success, failed, warned)
    return RunOutcome(result.success, code, result.run_id, failed, warned)


def exit_code(success: bool, failed: list[str], warned: list[str]) -> int:
    """The documented exit code of a run that started (README, ``--help``)."""
    if not success or failed:
        return EXIT_FAILED
    return EXIT_WARNINGS if warned else EXIT_OK


def _on_signal(signum: int, _frame) -> None:
    raise Interrupted(signum)


def _stoppable() -> None:
    """Ctrl-C and SIGTERM (a scheduler stopping the job) end the command within seconds."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)


def _report_line(settings: Settings, extract_id: str) -> str:
    return f"funder report: {settings.reports_dir / extract_id / 'funder_report.pdf'}"


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError, load_config
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    settings = Settings.from_env()
    try:  # before spending time on the generator
        load_config(settings.config_file)
    except (ConfigError, OSError) as exc:
        print(f"refused: configuration: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    params = SynthParams(n_people=args.people, seed=args.seed)
    t0 = time.perf_counter()
    if args.months > 1:  # successive month-end extracts of one world: the evaluation history
        from pipeline.synth.monthly import monthly_extracts

        extracts = monthly_extracts(params, args.months)
    else:
        extracts = None
    ids = [e.truth["extract_id"] for e in extracts] if extracts else [params.extract_id]
    missing = [i for i in ids if not (settings.landing_dir / i / "manifest.json").exists()]
    if missing:
        for ex in extracts or [generate(params)]:
            if ex.truth["extract_id"] in missing:
                write_extract(ex, settings.landing_dir, settings.truth_dir)
        print(f"generated {len(missing)} synthetic extract(s) in "
              f"{time.perf_counter() - t0:.1f} s")
    _stoppable()
    outcome = None
    for extract_id in ids:  # oldest first: each later run sees the earlier looks
        t1 = time.perf_counter()
        outcome = run_extract(extract_id, settings, progress=True)
        print(f"materialised all assets for {extract_id} in {time.perf_counter() - t1:.1f} s")
        if outcome.exit_code not in (EXIT_OK, EXIT_WARNINGS):
            return outcome.exit_code
    print(_report_line(settings, ids[-1]))
    return outcome.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _stoppable()
    t0 = time.perf_counter()
    outcome = run_extract(args.extract_id, settings, progress=not args.quiet)
    if outcome.run_id:
        print(f"run {outcome.run_id} finished in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    if outcome:
        print(_report_line(settings, args.extract_id))
    return outcome.exit_code


def cmd_extracts(_: argparse.Namespace) -> int:
    from pipeline.landing import complete_extracts

    for e in complete_extracts(Settings.from_env().landing_dir):
        print(f"{e.extract_id}\t{e.extraction_date}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Remove an extract everywhere, after a confirmation (``--yes`` skips it)."""
    from pipeline.extract_format import check_extract_id
    from pipeline.ingest.errors import ExtractError
    from pipeline.ingest.purge import (
        purge_dagster,
        purge_reports,
        purge_snapshots,
        purge_warehouse,
    )
    from pipeline.snapshot import snapshot_root

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
    snapshots = purge_snapshots(snapshot_root(settings.warehouse), extract_id)
    runs, partition = purge_dagster(_instance(settings), EXTRACTS.name, extract_id)
    print(f"purged {extract_id}: {sum(rows.values())} rows from {len(rows)} tables, "
          f"reports {'removed' if reports else 'none'}, research snapshots "
          f"{'removed' if snapshots else 'none'}, {runs} Dagster run(s), partition "
          f"{'removed' if partition else 'not registered'}")
    return 0


EXIT_CODES = """exit codes:
  0  every step and check passed
  1  a step or a blocking check failed (one line per failure, then the full log's path)
  2  refused before starting (configuration, extract id or landing folder)
  3  finished, but a warning check failed (named in the check summary)
  130 / 143  stopped by Ctrl-C / SIGTERM (the run is marked cancelled, nothing published)"""


def build_parser(prog: str = "stalking-eval") -> argparse.ArgumentParser:
    """The command line, calling itself ``prog`` in help and usage."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=raw,
        description="Stalking treatment evaluation pipeline: ingest an extract, validate it, "
        "analyse it and write the funder report (every asset, through Dagster).",
        epilog="""examples:
  %(prog)s demo                          # synthetic extract of 3,000 people, end to end
  %(prog)s demo --people 500 --seed 7    # a smaller one
  %(prog)s extracts                      # complete extracts in the landing folder
  %(prog)s run synthetic-2026-10-s42
  %(prog)s purge synthetic-2026-10-s42 --yes

folders come from STALKING_EVAL_DATA (default ./data) and DAGSTER_HOME; see README.

""" + EXIT_CODES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="generate a synthetic extract and run everything", formatter_class=raw,
        description="Generate a synthetic extract (unless it is already in the landing "
        "folder), materialise every asset for it and print where the funder PDF is.",
        epilog=f"examples:\n  {prog} demo\n  {prog} demo --people 10000 --seed 1\n\n"
        + EXIT_CODES)
    demo.add_argument("--people", type=int, default=3000, help="people to generate (3000)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (42)")
    demo.add_argument("--months", type=int, default=1,
                      help="successive monthly extracts of one world to run, oldest first, so "
                      "that the last report shows the evidence across extracts (1)")
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser(
        "run", help="run every asset for an extract in the landing folder",
        formatter_class=raw,
        description="Validate the configuration and the extract, then materialise every asset "
        "for it, printing each step as it finishes (stderr) and a summary of the checks.",
        epilog=f"examples:\n  {prog} run synthetic-2026-10-s42\n"
        f"  STALKING_EVAL_DATA=/srv/eval {prog} run police-2026-10 --quiet\n\n" + EXIT_CODES)
    run.add_argument("extract_id", help="landing folder name (= the manifest's extract_id)")
    run.add_argument("--quiet", action="store_true", help="no per-step progress lines")
    run.set_defaults(func=cmd_run)
    ext = sub.add_parser("extracts", help="list complete extracts in the landing folder",
                         formatter_class=raw,
                         description="List complete extracts (id, extraction date), oldest "
                         "first.", epilog=f"example:\n  {prog} extracts")
    ext.set_defaults(func=cmd_extracts)
    purge = sub.add_parser(
        "purge", help="remove an extract's rows, reports and run history", formatter_class=raw,
        description="Remove every row of an extract from the warehouse, its reports and its "
        "Dagster runs and partition; the landing folder is left alone.",
        epilog=f"examples:\n  {prog} purge police-2026-10          # asks to confirm\n"
        f"  {prog} purge police-2026-10 --yes")
    purge.add_argument("extract_id")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=cmd_purge)
    return parser


def main(argv: list[str] | None = None, prog: str = "stalking-eval") -> int:
    """Entry point of ``stalking-eval`` (and of ``python -m pipeline``, which passes its name)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return args.func(args)
    except Interrupted as stop:  # before the run started (a started run exits in _abandon)
        print(f"stopped by {signal.Signals(stop.signum).name} before the run started; nothing "
              "was written", file=sys.stderr)
        return 128 + stop.signum
