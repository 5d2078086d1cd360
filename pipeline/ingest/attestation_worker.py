"""A Great Expectations process beside the run, so that GE's import is off the run's path.

Importing Great Expectations takes about 3 s in every run, whatever the extract's size: its
data context imports every expectation, datasource and renderer (altair, SQLAlchemy's ORM,
pydantic models for every pandas reader). ``prestart`` starts a child Python that imports it at
once, while the run loads and stages the files in its own process (DuckDB work, on the other
core); each attestation check then hands its staged frame to the child over a pipe and reads
back the counts-only results (``attestation.ExpectationResult``).

The child never opens the warehouse (DuckDB allows one process per file) and inherits no file
descriptor but the two pipe ends, so it holds no lock; it sees only the frames it is sent,
writes nothing, and ends once it has attested every extract table (about 0.5 GB freed for the
analysis), when the run ends (``stop``, at exit) or when the run's process dies (its end of the
pipe closes).
Its stderr is discarded, so nothing it prints reaches a log; a failure there is reported back
as the exception's type only.

Without a running child (``attest_staged`` called directly, or a child that failed or died),
``validate`` returns None and the caller attests in its own process: the same suite, the same
results.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING

from pipeline.contracts.schema import EXTRACT_TABLES
from pipeline.settings import PROJECT_ROOT

if TYPE_CHECKING:  # the parent imports this module first thing in a run: keep it light
    import pandas as pd

    from pipeline.contracts.schema import TableContract

_worker: subprocess.Popen | None = None
_attested: set[str] = set()  # tables the running child has attested


def prestart() -> None:
    """Start the child now (nothing if one is running): GE imports while the run goes on."""
    global _worker
    if _worker is not None and _worker.poll() is None:
        return
    _attested.clear()
    _worker = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=PROJECT_ROOT)


def running() -> bool:
    return _worker is not None and _worker.poll() is None


def validate(frame: pd.DataFrame, contract: TableContract,
             extraction_date: dt.date) -> tuple | None:
    """The contract suite's counts-only results from the child; None without a working child."""
    if not running():
        return None
    try:
        pickle.dump((contract, extraction_date, frame), _worker.stdin, pickle.HIGHEST_PROTOCOL)
        _worker.stdin.flush()
        status, payload = pickle.load(_worker.stdout)
    except Exception:  # a dead, killed or garbled child: the caller attests in its process
        stop()
        return None
    if status != "ok":  # the caller's own attempt raises the real error where it can be seen
        stop()
        return None
    _attested.add(contract.table)
    if _attested >= set(EXTRACT_TABLES):  # a run attests each table once: free its memory
        stop()
    return payload


def stop() -> None:
    """End the child at once (it keeps nothing: no file, no state between requests)."""
    global _worker
    worker, _worker = _worker, None
    if worker is None:
        return
    worker.terminate()  # at once, even while it is still importing
    worker.wait()
    for stream in (worker.stdin, worker.stdout):
        try:
            stream.close()
        except OSError:
            pass


atexit.register(stop)


def _serve() -> None:
    """The child: import GE, then answer one request per pickled (contract, date, frame)."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything GE prints goes to the discarded stderr, never into the replies
    from pipeline.contracts.expectations import ephemeral_context
    from pipeline.ingest.attestation import counts_only, run_suite

    ephemeral_context()  # the first context also costs a few hundred ms: pay it now
    requests = sys.stdin.buffer
    while True:
        try:
            contract, extraction_date, frame = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = ("ok", counts_only(run_suite(frame, contract, extraction_date)))
        except Exception as exc:  # the type only: a message could hold values
            reply = ("error", type(exc).__name__)
        pickle.dump(reply, replies, pickle.HIGHEST_PROTOCOL)
        replies.flush()


if __name__ == "__main__":
    _serve()
