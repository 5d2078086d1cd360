"""Command line: ``stalking-eval`` / ``python -m pipeline`` with ``demo | run EXTRACT_ID |
extracts | purge EXTRACT_ID``.

``demo`` generates a synthetic extract (if it is not already in the landing folder), runs every
asset for it through Dagster with a persistent instance (so ``make dev`` shows the run) and
prints where the PDF is. ``run`` validates configuration and extract before anything is
registered, prints each step as it finishes, one root-cause line per failure with the path of
the full log, and a summary of the asset checks; the exit code says how it ended (EXIT_*).
The Dagster run executes in a worker thread so that the main thread stays free to print
progress and to stop within seconds on Ctrl-C or SIGTERM.

Faults while running (issue 12): a run holds the warehouse's file lock (``pipeline.run_lock``)
from before its first write until its process ends, so a second run on the same warehouse stops
at once with one line naming the first (or waits for it with ``--wait SECONDS``); a run killed
outright (``kill -9``) releases the lock with its process, and the next run marks it failed in
Dagster and removes what it left unfinished (report staging folders, partial files, unfinished
snapshot versions) before it starts. A read-only or full file system is reported as one line
naming the file and the fix, never a traceback (``fault_line``).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
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
EXIT_REFUSED = 2  # refused before starting: invalid configuration, extract id or landing folder,
# a read-only data folder, or another run holding the warehouse
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


RUN_TAG_WAREHOUSE = "stalking_eval/warehouse"  # the warehouse a command-line run writes
RUN_TAG_PID = "stalking_eval/pid"  # the process that ran it
UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")

# what a full or read-only file system looks like in messages without an errno (DuckDB, SQLite)
_FAULT_TEXT = [("no space left on device", errno.ENOSPC), ("disk quota exceeded", errno.EDQUOT),
               ("database or disk is full", errno.ENOSPC), ("file too large", errno.EFBIG),
               ("read-only file system", errno.EROFS), ("readonly database", errno.EACCES),
               ("permission denied", errno.EACCES)]
_QUOTED_PATH = re.compile(r"""["'](/[^"']+)["']""")


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def describe_fault(code: int, path: Path) -> str:
    """One line for a file-system fault on ``path``: what happened and what to do about it."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        mount = _mount_point(path)
        try:
            free = f" ({shutil.disk_usage(mount).free / 2**20:.1f} MiB free)"
        except OSError:
            free = ""
        what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        return f"{path}: {what}; free space on {mount}{free} and run again"
    if code == errno.EFBIG:
        return (f"{path}: file too large for this process's file size limit (ulimit -f); "
                "raise the limit and run again")
    if code == errno.EROFS:
        return (f"{path}: read-only file system; remount {_mount_point(path)} read-write (or "
                "point STALKING_EVAL_DATA at a writable folder) and run again")
    return (f"{path}: permission denied; make it writable for this user (chmod u+rw, or run "
            "as its owner) and run again")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def fault_line(error, fallback: Path) -> str | None:
    """The one-line description of a full or read-only file system behind ``error`` (an
    exception, with its chain, or a Dagster ``SerializableErrorInfo``), or None if it is not
    one. ``fallback`` is the file named when the error names none (SQLite never does)."""
    if isinstance(error, BaseException):
        links = [(e, str(e)) for e in _chain(error)]
    else:
        links = []
        while error is not None:
            links.append((None, error.message))
            error = error.cause
    for exc, text in links:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
                                                      errno.EROFS, errno.EACCES, errno.EPERM):
            return describe_fault(exc.errno, Path(exc.filename or fallback))
        lowered = text.lower()
        for needle, code in _FAULT_TEXT:
            if needle in lowered:
                quoted = _QUOTED_PATH.search(text)
                return describe_fault(code, Path(quoted[1]) if quoted else fallback)
        if "disk i/o error" in lowered and _nearly_full(fallback):  # SQLite on a full disk
            return describe_fault(errno.ENOSPC, fallback)
    return None


def _nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(_mount_point(path)).free < 4 * 2**20
    except OSError:
        return False


def _dagster_home(settings: Settings) -> Path:
    return Path(os.environ.get("DAGSTER_HOME", str(settings.data_dir / "dagster_home")))


def write_targets(extract_id: str, settings: Settings, dagster_home: Path | None
                  ) -> tuple[list[Path], list[Path]]:
    """(folders, files) a run of ``extract_id`` writes into, where they exist already."""
    from pipeline.run_lock import lock_path
    from pipeline.snapshot import snapshot_root

    snapshots = snapshot_root(settings.warehouse)
    report = settings.reports_dir / extract_id
    folders = [settings.warehouse.parent, settings.reports_dir, report, report / "exports",
               snapshots, snapshots / extract_id]
    files = [settings.warehouse, settings.warehouse.with_name(settings.warehouse.name + ".wal"),
             lock_path(settings.warehouse)]
    if dagster_home is not None:
        history = dagster_home / "history"
        folders += [dagster_home, history, history / "runs", dagster_home / "storage",
                    dagster_home / "schedules", dagster_home / "logs"]
        files += [history / "runs.db", history / "runs" / "index.db"]
    return folders, files


def writable_problem(extract_id: str, settings: Settings,
                     dagster_home: Path | None) -> str | None:
    """Why the run could not write what it must, as one line, or None. Checked before the run
    takes the lock or writes anything: each folder a run writes into (or, if it does not exist
    yet, the folder it would be created in) takes a file, each existing file opens for writing.
    Nothing is changed: the probe file is removed and no file is written to."""
    import tempfile

    folders, files = write_targets(extract_id, settings, dagster_home)
    probed = set()
    for folder in folders:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder in probed or not folder.is_dir():
            continue
        probed.add(folder)
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=".write-check-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            return "refused: " + describe_fault(exc.errno, folder) + "; nothing was written"
    for file in files:
        try:
            os.close(os.open(file, os.O_WRONLY | os.O_CLOEXEC))
        except FileNotFoundError:
            continue
        except OSError as exc:
            return "refused: " + describe_fault(exc.errno, file) + "; nothing was written"
    return None


def _leftovers(extract_id: str, settings: Settings) -> list[Path]:
    """Unfinished output a killed run of ``extract_id`` may have left: the funder report's
    staging folder, partially written report files, unfinished snapshot versions and pointer
    files. None of them is ever read; the published files they were meant to replace are
    untouched, because every one of them is moved into place only when complete."""
    from pipeline.snapshot import snapshot_root

    report, snapshots = settings.reports_dir / extract_id, snapshot_root(settings.warehouse)
    found = [settings.reports_dir / f".{extract_id}.staging"]
    for folder in (report, report / "exports"):
        found += folder.glob(".*.partial") if folder.is_dir() else []
    if (snapshots / extract_id).is_dir():
        found += (snapshots / extract_id).glob(".*.tmp")
    found.append(snapshots / ".LATEST.tmp")
    return sorted(p for p in found if p.exists() or p.is_symlink())


def _clean_leftovers(extract_id: str, settings: Settings) -> int:
    removed = 0
    for path in _leftovers(extract_id, settings):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed += 1
    return removed


def recover_abandoned(instance, warehouse: Path) -> list[str]:
    """Mark failed every unfinished command-line run of this warehouse: the caller holds the
    warehouse lock, so their processes have ended without recording it (``kill -9``, a power
    cut). Returns one note per run."""
    import dagster as dg

    runs = instance.get_runs(dg.RunsFilter(
        statuses=[dg.DagsterRunStatus[s] for s in UNFINISHED],
        tags={RUN_TAG_WAREHOUSE: str(Path(warehouse).resolve())}))
    notes = []
    for run in runs:
        pid = run.tags.get(RUN_TAG_PID, "?")
        instance.report_run_failed(
            run, message=f"its process (pid {pid}) ended without finishing the run (killed?); "
            "marked failed by the next run of this warehouse")
        notes.append(f"run {run.run_id} (pid {pid}) was left unfinished by a process that has "
                     "ended; marked failed, its unfinished files removed")
    return notes


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


def _execute(job, instance, extract_id: str, run_config: dict, progress: bool,
             run_id: str, tags: dict[str, str]):
    """Run the job in a worker thread; the main thread prints progress and receives signals."""
    import dagster as dg

    box: dict = {}

    def work() -> None:
        try:
            box["result"] = job.execute_in_process(
                partition_key=extract_id, instance=instance, raise_on_error=False,
                run_config=run_config, run_id=run_id, tags=tags)
        except BaseException as exc:  # re-raised in the main thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="dagster-run", daemon=True)
    started, cursor = time.perf_counter(), None
    kinds = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.ASSET_MATERIALIZATION}
    rows: dict[str, int | None] = {}
    real_stderr, sys.stderr = sys.stderr, _FaultFilter(sys.stderr, worker)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            if not progress:
                continue
            try:  # only the events stored since the last poll (re-reading all is quadratic)
                page = instance.get_records_for_run(run_id, cursor=cursor, of_type=kinds)
            except Exception:  # progress is cosmetic, the run's outcome is not: stop printing
                progress = False  # (e.g. the disk of the run storage is full)
                continue
            cursor = page.cursor
            for event in (r.event_log_entry.dagster_event for r in page.records):
                if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    rows[event.step_key] = _row_count(event)
                else:
                    line = _step_done(event, started, rows.get(event.step_key))
                    sys.stderr.write(line + "\n")  # one write: no interleaving
                    sys.stderr.flush()
    except Interrupted as stop:
        _abandon(instance, run_id, stop.signum)
    finally:
        sys.stderr = real_stderr
    if "error" in box:
        raise box["error"]
    return box["result"]


class _FaultFilter:
    """stderr while a run executes: drops what the run's own thread writes about a full or
    read-only disk (Dagster prints "Exception while writing logger call to event log: …"
    with a second line), which the run then reports as one line naming the file and the fix."""

    def __init__(self, stream, worker: threading.Thread) -> None:
        self._stream, self._worker = stream, worker

    def write(self, text: str) -> int:
        lowered = text.lower()
        if threading.current_thread() is self._worker and (
                "disk i/o error" in lowered or any(n in lowered for n, _ in _FAULT_TEXT)):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"== {e.step_key}\n{e.event_specific_data.error.to_string()}"
                                "\n" for e in failures))
    except OSError:  # a full or read-only disk: the failure lines above say so already
        return None
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
                progress: bool = False, wait: float | None = None) -> RunOutcome:
    """Materialise every asset for one extract in-process; the outcome is truthy on success.

    Failures print one line each (the root cause) plus where the full log is; a summary of
    the asset checks follows. ``instance`` defaults to the persistent one under DAGSTER_HOME
    (what ``make dev`` shows); ``progress`` prints a line on stderr as each step finishes.
    The run holds the warehouse lock throughout: if another process holds it, the run is
    refused at once, or after waiting up to ``wait`` seconds when that is given.
    """
    from dagster._core.utils import make_new_run_id  # not exported at the top level

    from pipeline.run_lock import LockBusy, WarehouseLock

    problem = preflight(extract_id, settings) or writable_problem(
        extract_id, settings, None if instance is not None else _dagster_home(settings))
    if problem:
        print(problem, file=sys.stderr)
        return RunOutcome(False, EXIT_REFUSED)
    run_id = make_new_run_id()
    lock = WarehouseLock(settings.warehouse, run_id=run_id, extract_id=extract_id)

    def waiting(holder) -> None:
        print(f"waiting for {holder.describe()} to finish (up to {wait:g} s)", file=sys.stderr,
              flush=True)

    try:
        lock.acquire(wait, on_wait=waiting)
    except LockBusy as busy:
        print(busy, file=sys.stderr)
        return RunOutcome(False, EXIT_REFUSED)
    except OSError as exc:
        print("refused: " + (fault_line(exc, lock.path) or f"{lock.path}: {exc.strerror}")
              + "; nothing was written", file=sys.stderr)
        return RunOutcome(False, EXIT_REFUSED)
    from pipeline.ingest import attestation_worker

    attestation_worker.prestart()  # Great Expectations imports there while the run starts
    try:
        return _run_locked(extract_id, settings, instance, progress, run_id)
    except Exception as exc:
        line = fault_line(exc, _dagster_home(settings) if instance is None
                          else Path(instance.root_directory))
        if line is None:
            raise
        print(f"FAILED run {run_id}: {line}", file=sys.stderr)
        return RunOutcome(False, EXIT_FAILED, run_id)
    finally:
        attestation_worker.stop()
        lock.release()


def _run_locked(extract_id: str, settings: Settings, instance, progress: bool,
                run_id: str) -> RunOutcome:
    """``run_extract`` once the warehouse lock is held."""
    from pipeline.definitions import EXTRACTS, build_definitions

    defs = build_definitions(settings)
    instance = instance or _instance(settings)
    notes = recover_abandoned(instance, settings.warehouse)
    removed = _clean_leftovers(extract_id, settings)
    for note in notes:
        print(note, file=sys.stderr)
    if removed and not notes:
        print(f"removed {removed} unfinished file(s) or folder(s) left by an earlier run of "
              f"{extract_id}", file=sys.stderr)
    instance.add_dynamic_partitions(EXTRACTS.name, [extract_id])
    job = defs.resolve_job_def("evaluate_extract")
    # Dagster's own console output is silenced; failures are printed below as one line each
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    tags = {RUN_TAG_WAREHOUSE: str(settings.warehouse.resolve()), RUN_TAG_PID: str(os.getpid())}
    result = _execute(job, instance, extract_id, quiet, progress, run_id, tags)
    for event in result.all_events:
        if event.is_failure and event.step_key:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            cause = fault_line(error, settings.data_dir) or root_cause(error)
            if cause == root_cause(error) and _nearly_full(settings.warehouse):
                # a full disk that the step's own message hides (it names another cause)
                cause = (describe_fault(errno.ENOSPC, settings.warehouse.parent)
                         + f" (the step said: {cause})")
            print(f"FAILED {event.step_key}: {cause}", file=sys.stderr)
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
    outcome = run_extract(args.extract_id, settings, progress=not args.quiet, wait=args.wait)
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
    from pipeline.run_lock import LockBusy, WarehouseLock

    lock = WarehouseLock(settings.warehouse, extract_id=extract_id, what=f"purge of {extract_id}")
    try:
        lock.acquire()
    except LockBusy as busy:
        print(str(busy).replace(" or run again with --wait SECONDS", ""), file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(fault_line(exc, lock.path) or f"{lock.path}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        try:
            rows = purge_warehouse(settings.warehouse, extract_id)
        except duckdb.IOException:
            print(f"{settings.warehouse}: the warehouse is open in another process (make dev, "
                  "a notebook); close it and purge again; nothing removed", file=sys.stderr)
            return 1
        reports = purge_reports(settings.reports_dir, extract_id)
        snapshots = purge_snapshots(snapshot_root(settings.warehouse), extract_id)
        runs, partition = purge_dagster(_instance(settings), EXTRACTS.name, extract_id)
    finally:
        lock.release()
    print(f"purged {extract_id}: {sum(rows.values())} rows from {len(rows)} tables, "
          f"reports {'removed' if reports else 'none'}, research snapshots "
          f"{'removed' if snapshots else 'none'}, {runs} Dagster run(s), partition "
          f"{'removed' if partition else 'not registered'}")
    return 0


EXIT_CODES = """exit codes:
  0  every step and check passed
  1  a step or a blocking check failed (one line per failure, then the full log's path), or
     the disk filled up or became read-only during the run (one line naming the file and fix)
  2  refused before starting (configuration, extract id or landing folder, a read-only data
     folder, or another run or purge using the warehouse: see --wait); nothing was written
  3  finished, but a warning check failed (named in the check summary)
  130 / 143  stopped by Ctrl-C / SIGTERM (the run is marked cancelled, nothing published)
a run killed outright (kill -9) is marked failed by the next run of the warehouse, which also
removes what it left unfinished; published reports are never half-written."""


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
    run.add_argument("--wait", type=float, metavar="SECONDS", default=None,
                     help="if another run or purge is using the warehouse, wait up to SECONDS "
                     "for it to finish (default: stop at once with exit code 2)")
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
