"""Faults while running (issue 12, item 7): nothing half-written, one clear line per fault.

Real ``python -m pipeline run`` processes on small generated extracts (400 people, 20 bootstrap
resamples), watched through their progress lines, the Dagster event log and the file system
(never a fixed sleep):

- ``kill -9`` at an asset boundary and inside ``comparison_estimates`` (the longest asset on a
  small extract; the Great Expectations check of ``staged_police_persons`` takes longer but is a
  check that writes nothing), then a re-run: ``numbers.json`` equals that of an uninterrupted run
  of the same extract in another folder, ``provenance.code_version`` aside (the git commit, which
  other work may move between two runs); the killed runs are marked failed with a note, no stale
  staging or partial file is left and the DuckDB WAL the kills left is replayed by the next run.
- ``kill -9`` of the funder report between staging and publishing: the published report is
  unchanged byte for byte and the next run removes the staging folder.
- Two runs at once on one warehouse (same or another extract): the second stops with one line
  naming the first and exit code 2, or with ``--wait`` says it waits and runs once the first ends.
- A full disk (a small tmpfs filled up; a file size limit where tmpfs cannot be mounted) and a
  read-only warehouse, data folder or file system (as root: the capability that overrides file
  modes is dropped, so the modes bind as for any user): one line naming the file and the fix,
  no traceback, and the other extract's report and warehouse rows unchanged (checksums).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline import cli
from pipeline.run_lock import LockBusy, WarehouseLock, lock_path, read_holder
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import fast_settings

ROOT = Path(__file__).resolve().parents[2]
E1 = SynthParams(n_people=400, seed=5).extract_id
E2 = SynthParams(n_people=400, seed=6).extract_id
RUN_TIMEOUT = 900  # seconds for a whole run on a loaded 2-core machine
PROGRESS = re.compile(r"^\[ *\d+\.\d s\] \S+ (done|FAILED)")


# ---------------------------------------------------------------------------- helpers

class Proc:
    """A ``python -m pipeline`` process whose stderr lines a thread collects as they come."""

    def __init__(self, root: Path, *args: str, preexec_fn=None, home: Path | None = None
                 ) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=_env(root, home),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)
        self.pid = self.popen.pid
        self.lines: list[str] = []
        self.out = ""
        self._cond = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float = RUN_TIMEOUT) -> str:
        """The first stderr line matching ``pattern`` (regex), waiting for it to appear."""
        regex, deadline = re.compile(pattern), time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((line for line in self.lines if regex.search(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} (pid {self.pid}, "
                                         f"ended={self._ended}):\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 1.0))

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.finish(60) == -signal.SIGKILL

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        rc = self.popen.wait(timeout)
        self._reader.join(30)
        self.out = self.popen.stdout.read()
        return rc

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(30)

    @property
    def err(self) -> str:
        return "\n".join(self.lines)

    def messages(self) -> list[str]:
        """stderr without the per-step progress lines."""
        return [line for line in self.lines if not PROGRESS.match(line)]


def _env(root: Path, home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STALKING_EVAL_")}
    return {**env, "STALKING_EVAL_DATA": str(root),
            "DAGSTER_HOME": str(home or root / "dagster_home"),
            "STALKING_EVAL_CONFIG": str(root / "evaluation.yaml"), "PYTHONWARNINGS": "ignore"}


def _prepare(root: Path, landing: Path) -> Path:
    """A data folder with the fast configuration and a copy of the generated extracts."""
    root.mkdir(parents=True, exist_ok=True)
    fast_settings(root)  # writes root/evaluation.yaml (20 bootstrap resamples)
    shutil.copytree(landing, root / "landing")
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_sums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones included), by relative path."""
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows_sums(warehouse: Path, extract_id: str) -> dict[str, tuple]:
    """(rows, md5 of the sorted rows) of one extract in every warehouse table that has an
    ``extract_id`` column: the extract's content, independent of the file's page layout."""
    con = duckdb.connect(str(warehouse))  # read-write: replays a WAL as the next run would
    try:
        tables = con.execute("SELECT DISTINCT table_schema, table_name FROM "
                             "information_schema.columns WHERE column_name = 'extract_id' "
                             "ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(
            f'SELECT count(*), md5(coalesce(string_agg(CAST(x AS VARCHAR), chr(10) ORDER BY '
            f'CAST(x AS VARCHAR)), \'\')) FROM "{s}"."{t}" x WHERE extract_id = ?',
            [extract_id]).fetchone() for s, t in tables}
    finally:
        con.close()


def _numbers(root: Path, extract_id: str) -> tuple[bytes, dict]:
    raw = (root / "reports" / extract_id / "numbers.json").read_bytes()
    doc = json.loads(raw)
    doc["provenance"].pop("code_version")
    return raw, doc


def _orphans(root: Path) -> list[Path]:
    """Unfinished files or folders anywhere in the reports and snapshots."""
    found = []
    for top in (root / "reports", root / "snapshots"):
        if top.exists():
            found += [p for p in top.rglob(".*")
                      if p.name.endswith((".staging", ".partial", ".tmp"))]
    return found


def _lock_is_free(warehouse: Path) -> bool:
    try:
        WarehouseLock(warehouse).acquire().release()
    except LockBusy:
        return False
    return True


def _instance(root: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(root / "dagster_home"))


def _steps(instance, run_id: str, kind: dg.DagsterEventType) -> set[str]:
    return {e.step_key for e in instance.all_logs(run_id, of_type=kind) if e.step_key}


def _wait_for(condition, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def _mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``path`` (root only); False where that is not possible."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _modes_bind() -> object:
    """A ``preexec_fn`` under which file modes bind: for root, drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set, so the ``python`` it starts has neither."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    return drop


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Two generated extracts of 400 people (E1, E2) in a landing folder to copy from."""
    root = tmp_path_factory.mktemp("faults_landing")
    for seed in (5, 6):
        write_extract(generate(SynthParams(n_people=400, seed=seed)), root / "landing",
                      root / "truth")
    return root / "landing"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, landing):
    """An uninterrupted run of E1 in its own data folder, on a 64 MiB tmpfs where one can be
    mounted (the full-disk test fills it later). It starts at once, in the background, so that
    it runs while the kill test works; ``result()`` waits for it."""
    root = tmp_path_factory.mktemp("faults_baseline") / "data"
    mounted = _mount_tmpfs(root, "64m")
    _prepare(root, landing)
    proc = Proc(root, "run", E1, "--quiet")

    class Baseline:
        def __init__(self) -> None:
            self.root, self.mounted, self.rc = root, mounted, None

        def result(self) -> Path:
            if self.rc is None:
                self.rc = proc.finish()
            assert self.rc in (cli.EXIT_OK, cli.EXIT_WARNINGS), proc.err
            return self.root

    yield Baseline()
    proc.stop()
    if mounted:
        subprocess.run(["umount", "-l", str(root)], check=False)


# ---------------------------------------------------------------------------- the lock itself

def test_a_second_lock_is_refused_naming_the_holder_and_can_wait(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    first = WarehouseLock(warehouse, run_id="r-1", extract_id="x-1").acquire()
    assert read_holder(lock_path(warehouse)).pid == os.getpid()
    with pytest.raises(LockBusy) as refused:
        WarehouseLock(warehouse).acquire()
    assert str(refused.value).startswith(f"refused: run r-1 (pid {os.getpid()}, extract x-1) "
                                         f"is using {warehouse}")
    told: list = []
    started = time.monotonic()
    with pytest.raises(LockBusy, match="after waiting 0.5 s"):
        WarehouseLock(warehouse).acquire(wait=0.5, on_wait=told.append)
    assert len(told) == 1 and told[0].run_id == "r-1"
    assert time.monotonic() - started >= 0.5
    # the holder ends while another waits: the waiter takes the lock at once
    timer = threading.Timer(0.5, first.release)
    timer.start()
    second = WarehouseLock(warehouse, run_id="r-2").acquire(wait=30)
    timer.join()
    assert read_holder(lock_path(warehouse)).run_id == "r-2"
    second.release()
    assert read_holder(lock_path(warehouse)).run_id is None  # nobody named once released


def test_the_kernel_releases_the_lock_of_a_killed_holder(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from pipeline.run_lock import WarehouseLock; "
         "WarehouseLock(Path(sys.argv[1]), run_id='held').acquire(); print('held', flush=True); "
         "time.sleep(120)", str(warehouse)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=f"run held \\(pid {child.pid}\\)"):
            WarehouseLock(warehouse).acquire()
        child.kill()
        child.wait(30)
        WarehouseLock(warehouse).acquire().release()  # at once: no stale lock
    finally:
        child.kill()
        child.wait(30)


def test_purge_is_refused_while_a_run_holds_the_warehouse(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STALKING_EVAL_DATA", str(tmp_path))
    monkeypatch.delenv("STALKING_EVAL_WAREHOUSE", raising=False)
    with WarehouseLock(tmp_path / "warehouse.duckdb", run_id="r-9", extract_id="police-1"):
        assert cli.main(["purge", "police-1", "--yes"]) == cli.EXIT_REFUSED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"refused: run r-9 (pid {os.getpid()}")


def test_fault_lines_name_the_file_and_the_fix(tmp_path):
    from dagster._utils.error import SerializableErrorInfo

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "a.csv"))
    line = cli.fault_line(full, tmp_path)
    assert line.startswith(f"{tmp_path / 'a.csv'}: no space left on device; free space on /")
    duck = SerializableErrorInfo(
        message='duckdb.duckdb.IOException: IO Error: Could not write file '
        f'"{tmp_path}/warehouse.duckdb.wal": No space left on device\n', stack=[], cls_name="X")
    wrapper = SerializableErrorInfo(message="Error occurred while executing op", stack=[],
                                    cls_name="Y", cause=duck)
    assert cli.fault_line(wrapper, tmp_path).startswith(
        f"{tmp_path}/warehouse.duckdb.wal: no space left on device; free space on ")
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/srv/eval/x")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert "remount / read-write" in cli.fault_line(outer, tmp_path)
    denied = cli.fault_line(PermissionError(errno.EACCES, "Permission denied", "/d/w.duckdb"),
                            tmp_path)
    assert denied.startswith("/d/w.duckdb: permission denied; make it writable")
    assert cli.fault_line(ValueError("a bug"), tmp_path) is None
    assert "\n" not in line + denied


# ---------------------------------------------------------------------------- kill -9

def test_kill_9_anywhere_then_rerun_gives_the_same_numbers_and_leaves_nothing(
        tmp_path, landing, baseline):
    root = _prepare(tmp_path / "data", landing)
    warehouse = root / "warehouse.duckdb"
    procs: list[Proc] = []
    try:
        # 1. kill -9 at an asset boundary: as the first raw table's step is reported done
        first = Proc(root, "run", E1)
        procs.append(first)
        first.wait_line(r"\] raw_\w+ done")
        run1 = read_holder(lock_path(warehouse)).run_id
        first.kill9()
        assert _lock_is_free(warehouse)
        with _instance(root) as instance:
            assert instance.get_run_by_id(run1).status == dg.DagsterRunStatus.STARTED  # stuck

        # 2. the next run marks it failed, in one line, then holds the warehouse: a second
        #    run of the same or another extract is refused at once, naming it; a third waits
        second = Proc(root, "run", E1)
        procs.append(second)
        second.wait_line(rf"^run {run1} \(pid {first.pid}\) was left unfinished by a process "
                         "that has ended; marked failed")
        run2 = read_holder(lock_path(warehouse)).run_id
        busy = rf"^refused: run {run2} \(pid {second.pid}, extract {E1}\) is using {warehouse}"
        same, other = Proc(root, "run", E1), Proc(root, "run", E2, "--quiet")
        waiter = Proc(root, "run", E1, "--wait", "900")
        procs += [same, other, waiter]
        for refused in (same, other):
            assert refused.finish(120) == cli.EXIT_REFUSED
            assert len(refused.lines) == 1 and re.match(busy, refused.lines[0]), refused.err
            assert refused.lines[0].endswith("or run again with --wait SECONDS; nothing was "
                                             "written")
        waiter.wait_line(rf"^waiting for run {run2} \(pid {second.pid}, extract {E1}\) to "
                         r"finish \(up to 900 s\)$")

        # 3. kill -9 inside comparison_estimates (started, not finished: Dagster's event log)
        second.wait_line(r"\] matched_cohort done")
        with _instance(root) as instance:
            _wait_for(lambda: "comparison_estimates" in _steps(
                instance, run2, dg.DagsterEventType.STEP_START), 300,
                "comparison_estimates to start")
            second.kill9()
            assert "comparison_estimates" not in _steps(instance, run2,
                                                         dg.DagsterEventType.STEP_SUCCESS)

        # 4. the waiter takes over, marks the killed run failed and completes the extract
        waiter.wait_line(rf"^run {run2} \(pid {second.pid}\) was left unfinished")
        assert waiter.finish() in (cli.EXIT_OK, cli.EXIT_WARNINGS), waiter.err
        assert "Traceback" not in waiter.err
        assert len([m for m in waiter.messages() if "left unfinished" in m]) == 1
        with _instance(root) as instance:
            runs = {r.run_id: r for r in instance.get_runs()}
            assert len(runs) == 3
            for killed in (run1, run2):
                assert runs[killed].status == dg.DagsterRunStatus.FAILURE
                note = instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)
                assert "ended without finishing the run" in note[-1].message
            run3 = next(r for r in runs if r not in (run1, run2))
            assert runs[run3].status == dg.DagsterRunStatus.SUCCESS
        raw, numbers = _numbers(root, E1)
        base_raw, base_numbers = _numbers(baseline.result(), E1)
        assert numbers == base_numbers  # identical but for provenance.code_version
        print(f"numbers.json byte-identical to the uninterrupted run: {raw == base_raw}")
        assert _orphans(root) == []
        wal = warehouse.with_name(warehouse.name + ".wal")
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed on close
        published = _tree_sums(root / "reports" / E1)

        # 5. kill -9 of the funder report between staging and publishing (the asset alone,
        #    through Dagster): the published report is unchanged, byte for byte
        script = ("import sys, dagster as dg; from dagster_duckdb import DuckDBResource; "
                  "from assets.common import ProjectPaths; from assets.report import "
                  "funder_report; from pipeline.settings import Settings; "
                  "s = Settings.from_env(); i = dg.DagsterInstance.ephemeral(); "
                  "i.add_dynamic_partitions('extract', [sys.argv[1]]); "
                  "dg.materialize([funder_report], partition_key=sys.argv[1], instance=i, "
                  "resources={'duckdb': DuckDBResource(database=str(s.warehouse)), "
                  "'paths': ProjectPaths.from_settings(s)})")
        staging = root / "reports" / f".{E1}.staging"
        report = subprocess.Popen([sys.executable, "-c", script, E1], cwd=ROOT,
                                  env=_env(root), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda: (staging / "numbers.json").exists(), 300, "the staged report",
                      poll=0.01)
            report.kill()
            assert report.wait(30) == -signal.SIGKILL
        finally:
            report.kill()
        assert staging.is_dir()  # what the kill left ...
        assert _tree_sums(root / "reports" / E1) == published  # ... and what it did not touch

        # 6. the next run removes it before it starts (stopped by SIGTERM once it runs)
        last = Proc(root, "run", E1)
        procs.append(last)
        last.wait_line(r" done in ")
        assert not staging.exists() and _orphans(root) == []
        assert any("removed 1 unfinished file(s) or folder(s)" in m for m in last.messages())
        last.popen.send_signal(signal.SIGTERM)
        assert last.finish(60) == 128 + signal.SIGTERM
        assert _tree_sums(root / "reports" / E1) == published
        assert _lock_is_free(warehouse)
    finally:
        for proc in procs:
            proc.stop()


# ---------------------------------------------------------------------------- full disk

def test_a_full_disk_fails_with_one_line_and_changes_nothing_else(baseline, tmp_path):
    """Two places the disk can fill: Dagster's run storage (DAGSTER_HOME on the full disk too,
    the default) and the warehouse itself (DAGSTER_HOME elsewhere)."""
    root = baseline.result()
    warehouse = root / "warehouse.duckdb"
    report_before = _tree_sums(root / "reports" / E1)
    rows_before = _rows_sums(warehouse, E1)
    filler, preexec = root / "filler", None
    if baseline.mounted:  # fill the tmpfs up to 1 MiB (256 KiB with DAGSTER_HOME elsewhere):
        cases = [None, tmp_path / "dagster_home"]  # E2's raw tables do not fit
    else:  # no tmpfs: a file size limit just above the warehouse (EFBIG; SIGXFSZ is ignored)
        import resource

        cases, limit = [None], warehouse.stat().st_size + 2**18

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for home in cases:
        if baseline.mounted:
            keep = 2**20 if home is None else 2**18
            with open(filler, "wb") as fh:
                for _ in range((shutil.disk_usage(root).free - keep) // 2**16):
                    fh.write(b"\0" * 2**16)
        try:
            proc = Proc(root, "run", E2, preexec_fn=preexec, home=home)
            rc = proc.finish()
        finally:
            filler.unlink(missing_ok=True)
        print("\n".join([f"full disk, DAGSTER_HOME={home or 'on it'}:", *proc.lines]))
        faults = [m for m in proc.messages() if m.startswith("FAILED")]
        assert rc == cli.EXIT_FAILED, proc.err
        # Dagster's own "Exception while writing logger call to event log" is filtered out;
        # a step's one-line message may itself say "...Exception while checking the file"
        assert "Traceback" not in proc.err and "Exception while writing" not in proc.err, \
            proc.err
        assert faults, proc.err
        fix = f"free space on {root}" if baseline.mounted else "(ulimit -f)"
        for line in faults:  # "FAILED <step or run>: <file>: no space left on device; free
            assert fix in line and re.search(rf": {root}\S*: ", line), line  # space on …"
        if home is not None:  # the warehouse filled up, in a step: the step's line names it
            assert any(re.search(rf"^FAILED \w+: ({warehouse}(\.wal)?|{root}): no space", f)
                       for f in faults), proc.err
        assert not (root / "reports" / E2 / "funder_report.pdf").exists()
        assert _tree_sums(root / "reports" / E1) == report_before
        assert _rows_sums(warehouse, E1) == rows_before
        assert _lock_is_free(warehouse)


# ---------------------------------------------------------------------------- read-only

def test_a_read_only_warehouse_or_data_folder_is_refused_with_one_line(baseline):
    root = baseline.result()
    warehouse = root / "warehouse.duckdb"
    preexec = _modes_bind()
    before = _tree_sums(root / "reports") | {"warehouse": _sha(warehouse)}
    cases = [(warehouse, 0o444, rf"^refused: {warehouse}: permission denied; make it writable"),
             (root, 0o555, rf"^refused: {root}: permission denied; make it writable")]
    for path, mode, expected in cases:
        old = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode)
        try:
            proc = Proc(root, "run", E2, preexec_fn=preexec)
            rc = proc.finish(300)
        finally:
            path.chmod(old)
        print(proc.err)
        assert rc == cli.EXIT_REFUSED, proc.err
        assert len(proc.lines) == 1 and re.match(expected, proc.lines[0]), proc.err
        assert proc.lines[0].endswith("and run again; nothing was written")
    if baseline.mounted:  # a read-only file system
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        try:
            proc = Proc(root, "run", E2)
            rc = proc.finish(300)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(root)], check=True)
        print(proc.err)
        assert rc == cli.EXIT_REFUSED, proc.err
        assert len(proc.lines) == 1, proc.err
        assert re.match(rf"^refused: {root}\S*: read-only file system; remount {root} "
                        "read-write", proc.lines[0]), proc.err
    assert _tree_sums(root / "reports") | {"warehouse": _sha(warehouse)} == before
    assert not (root / "reports" / E2).exists()
