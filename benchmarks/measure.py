"""Measure a command as a separate process: wall time, CPU time and resident memory over time.

``run_measured`` starts the command in its own session and a sampler thread reads, every
``interval`` seconds (0.2 by default), ``/proc/<pid>/stat`` (utime + stime, plus cutime + cstime
of reaped children) and ``/proc/<pid>/status`` (VmRSS) of the process and of every descendant
still alive. The samples are a time series of cumulative CPU seconds and resident bytes of the
whole process tree; ``cpu_between`` and ``peak_between`` cut it into intervals (the Dagster steps
of a run, from the run's event log, in ``bench_pipeline``). Wall time, CPU time and peak RSS of
the whole process come exactly from ``wait4`` (``ru_maxrss``), not from the samples.

A time limit and a memory ceiling stop the command (SIGTERM to its session, SIGKILL 15 s later
if it is still there) instead of letting it hang or exhaust the machine; the measurement then
says which limit stopped it and when. Linux only (``/proc``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

GB = 1024**3
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:  # the process ended between listing and reading
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's ``children`` file), [] once it has ended."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        if text:
            found.extend(int(c) for c in text.split())
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children(p))
    return tree


def cpu_seconds(pid: int) -> float | None:
    """utime + stime + cutime + cstime of one process, in seconds (None once it has ended)."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def rss_bytes(pid: int) -> int | None:
    """Resident set size (VmRSS) of one process in bytes (None once it has ended)."""
    text = _read(f"/proc/{pid}/status")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # a zombie has no VmRSS line


@dataclass
class Sample:
    t: float  # time.time(), comparable with Dagster event timestamps
    cpu: float  # cumulative CPU seconds of the process tree
    rss: int  # resident bytes of the process tree


class Sampler(threading.Thread):
    """Samples CPU and RSS of ``pid``'s process tree every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(name=f"sampler-{pid}", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._dead_cpu: dict[int, float] = {}  # last CPU seen of descendants that ended

    def sample(self) -> Sample | None:
        now = time.time()
        cpu, rss, alive = 0.0, 0, False
        seen: dict[int, float] = {}
        for p in process_tree(self.pid):
            c, r = cpu_seconds(p), rss_bytes(p)
            if c is None:
                continue
            alive = alive or p == self.pid
            seen[p] = c
            cpu += c
            rss += r or 0
        if not alive:
            return None
        # a child that ended and was reaped is in the parent's cutime; one that ended
        # unreaped would otherwise drop out of the sum: keep the cumulative series monotone
        previous = self.samples[-1].cpu if self.samples else 0.0
        s = Sample(now, max(cpu, previous), rss)
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def latest_rss(self) -> int:
        return self.samples[-1].rss if self.samples else 0


@dataclass
class Measurement:
    """How a measured command ended and what it used."""

    command: list[str]
    started: float  # time.time() at launch
    wall_s: float
    cpu_s: float  # exact: wait4 of the process (its reaped children included)
    peak_rss_gb: float  # max of ru_maxrss and the sampled tree RSS
    exit_code: int | None
    stopped: str | None = None  # "time" or "memory" when a limit stopped it
    rss_at_stop_gb: float | None = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.stopped is None

    def cpu_at(self, t: float) -> float:
        """Cumulative CPU seconds at time ``t`` (linear between samples)."""
        return _interp(t, [s.t for s in self.samples], [s.cpu for s in self.samples])

    def cpu_between(self, t0: float, t1: float) -> float:
        return max(0.0, self.cpu_at(t1) - self.cpu_at(t0))

    def peak_between(self, t0: float, t1: float) -> float:
        """Peak sampled RSS (GB) within [t0, t1]; for an interval shorter than the sampling
        period, the first sample after ``t0`` (the memory the interval left behind)."""
        inside = [s.rss for s in self.samples if t0 <= s.t <= t1]
        if not inside:
            after = [s.rss for s in self.samples if s.t >= t0][:1]
            before = [s.rss for s in self.samples if s.t <= t0][-1:]
            inside = after or before or [0]
        return max(inside) / GB


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    if not xs:
        return 0.0
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1


def run_measured(command: list[str], *, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, time_limit_s: float | None = None,
                 mem_ceiling_gb: float | None = None, interval: float = 0.2,
                 stdout=None, stderr=None, grace_s: float = 15.0) -> Measurement:
    """Run ``command`` to completion (or until a limit stops it) and measure it."""
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=stderr,
                            start_new_session=True)
    sampler = Sampler(proc.pid, interval)
    sampler.samples.append(Sample(started, 0.0, 0))
    sampler.start()
    stopped, rss_at_stop, deadline = None, None, None
    status, usage = None, None
    while status is None:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
            break
        elapsed = time.perf_counter() - t0
        if stopped is None:
            over_time = time_limit_s is not None and elapsed > time_limit_s
            over_mem = (mem_ceiling_gb is not None
                        and sampler.latest_rss() > mem_ceiling_gb * GB)
            if over_time or over_mem:
                stopped = "time" if over_time else "memory"
                rss_at_stop = sampler.latest_rss() / GB
                _signal_session(proc.pid, signal.SIGTERM)
                deadline = time.perf_counter() + grace_s
        elif deadline is not None and time.perf_counter() > deadline:
            _signal_session(proc.pid, signal.SIGKILL)
            deadline = None
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    ru_peak = usage.ru_maxrss * 1024 / GB  # kilobytes on Linux
    sampled_peak = max((s.rss for s in sampler.samples), default=0) / GB
    samples = sampler.samples + [Sample(started + wall, max(cpu, sampler.samples[-1].cpu),
                                        sampler.samples[-1].rss)]
    return Measurement(command=list(command), started=started, wall_s=wall, cpu_s=cpu,
                       peak_rss_gb=max(ru_peak, sampled_peak), exit_code=proc.returncode,
                       stopped=stopped, rss_at_stop_gb=rss_at_stop, samples=samples)


def _signal_session(pid: int, sig: int) -> None:
    """Signal the session (process group) this module started for the command, by its id."""
    try:
        os.killpg(pid, sig)  # start_new_session: the group id is the command's pid
    except ProcessLookupError:
        pass


# --- machine description -------------------------------------------------------------------

PACKAGES = ["dagster", "dagster-duckdb", "duckdb", "pandas", "numpy", "scipy", "statsmodels",
            "lifelines", "great-expectations", "pyarrow"]


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gb() -> float | None:
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) * 1024 / GB, 1)
    return None


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def git_commit(root: Path) -> str:
    return _git(root, "rev-parse", "--short=10", "HEAD") or "nogit"


def machine_description(root: Path) -> dict:
    """CPU, cores, RAM, load, OS, Python and package versions, git commit (and what differs
    from it in the working tree: other work may be in progress while the benchmark runs)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    dirty = [line[3:] for line in _git(root, "status", "--porcelain",
                                        "--untracked-files=no").splitlines() if line]
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "ram_gb": _mem_total_gb(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": git_commit(root),
        "git_branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "git_modified_files": dirty,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
