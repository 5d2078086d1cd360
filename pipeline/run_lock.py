"""One writer per warehouse file: an OS file lock held for the whole of a run (or a purge).

DuckDB lets one process write a database file, but the assets open and close their connection
step by step, so two runs started at once would take turns on the file between steps (and fail
at random with DuckDB's "Could not set lock"). A run therefore first takes an exclusive
``flock`` on ``<warehouse>.lock`` (beside the warehouse, whichever extract it runs) and keeps it
until the process ends. The kernel releases the lock when the process dies, however it dies
(``kill -9`` included), so a killed run never leaves a lock behind; the file itself stays (it
is never removed: removing lock files races with the next taker) and holds the holder's run id,
pid and extract as JSON, which is what a refused or waiting run prints.

A second run either stops at once with one line naming the holder (the default; exit code 2)
or, given a timeout, prints one ``waiting for run … to finish`` line and takes the lock when the
holder ends, stopping with the same kind of line if the timeout passes first.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.2


class LockBusy(RuntimeError):
    """Another process holds the warehouse; the message names it (one line)."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock, as written into the lock file."""

    pid: int | None
    run_id: str | None
    extract_id: str | None
    what: str

    def describe(self) -> str:
        name = f"run {self.run_id}" if self.run_id else (self.what or "another run")
        details = [f"pid {self.pid}" if self.pid else None,
                   f"extract {self.extract_id}" if self.extract_id else None]
        details = [d for d in details if d]
        return f"{name} ({', '.join(details)})" if details else name


def lock_path(warehouse: Path) -> Path:
    """The lock file of a warehouse: ``<warehouse>.lock`` in the same folder."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".lock")


def read_holder(path: Path) -> Holder:
    """What the lock file says about its holder (fields None when unreadable or half-written)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    return Holder(pid if isinstance(pid, int) else None, data.get("run_id"),
                  data.get("extract_id"), str(data.get("what") or ""))


class WarehouseLock:
    """The exclusive lock of one warehouse file; a context manager. ``acquire`` raises
    ``LockBusy`` if another process holds it (after ``wait`` seconds when given) and OSError
    (EACCES, EROFS, ENOSPC, ...) if the lock file cannot be created or written."""

    def __init__(self, warehouse: Path, *, run_id: str | None = None,
                 extract_id: str | None = None, what: str = "run") -> None:
        self.path = lock_path(warehouse)
        self.info = {"pid": os.getpid(), "run_id": run_id, "extract_id": extract_id,
                     "what": what}
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float | None = None,
                on_wait: Callable[[Holder], None] | None = None) -> WarehouseLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = None if wait is None else time.monotonic() + max(wait, 0.0)
            told = False
            while not self._try_lock(fd):
                holder = read_holder(self.path)
                if deadline is None or time.monotonic() >= deadline:
                    waited = f" after waiting {wait:g} s" if wait else ""
                    raise LockBusy(
                        f"refused: {holder.describe()} is using {self.path.with_suffix('')}"
                        f"{waited}; wait for it to finish"
                        + ("" if wait else " or run again with --wait SECONDS")
                        + "; nothing was written")
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(self.info) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)  # closing the descriptor drops the lock if it was taken
            raise
        self._fd = fd
        return self

    @staticmethod
    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale holder named once released
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the flock

    def __enter__(self) -> WarehouseLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
