"""Time validating a 1,000,000-person synthetic extract (not a test; prints and records timings).

Run: ``.venv/bin/python benchmarks/bench_validation.py [--people N] [--work DIR] [--attest]``

Steps timed per file: ``load_raw`` (hash, encoding and header checks, parse, identifier guard,
write ``raw``) and ``stage`` (every row rule and cross-table rule, quarantine, write
``staging``); with ``--attest`` also the Great Expectations attestation of each staged table
(sampled above ``attestation.max_rows``). The extract is generated once into the work folder and
reused. Results are appended as one JSON line to ``benchmarks/results/bench_validation.jsonl``
together with the machine's core count and load average, because on a shared machine the wall
time depends on what else runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.contracts.schema import EXTRACT_TABLES, load_contract  # noqa: E402
from pipeline.ingest.load import load_raw, stage  # noqa: E402
from pipeline.ingest.manifest import read_manifest  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_validation.jsonl"


def ensure_extract(people: int, work: Path) -> Path:
    """Generate the synthetic extract once (reused by later runs)."""
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    params = SynthParams(n_people=people, seed=42)
    folder = work / "landing" / params.extract_id
    if not (folder / "manifest.json").exists():
        t0 = time.perf_counter()
        write_extract(generate(params), work / "landing", work / "truth")
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s")
    return folder


def run(folder: Path, db: Path, attest: bool) -> dict:
    if db.exists():
        db.unlink()
    con = duckdb.connect(str(db))
    manifest = read_manifest(folder)
    steps: dict[str, dict] = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for table in EXTRACT_TABLES:
        contract = load_contract(table)
        t0 = time.perf_counter()
        loaded = load_raw(con, manifest, contract)
        t1 = time.perf_counter()
        staged = stage(con, manifest.extract_id, contract)
        t2 = time.perf_counter()
        steps[table] = {"rows": loaded.raw_rows, "quarantined": staged.quarantined_rows,
                        "load_s": round(t1 - t0, 2), "stage_s": round(t2 - t1, 2)}
        print(f"{table:18s} {loaded.raw_rows:>10,} rows  load {t1 - t0:6.2f} s  "
              f"stage {t2 - t1:6.2f} s  quarantined {staged.quarantined_rows}", flush=True)
    total = time.perf_counter() - wall0
    out = {"validation_s": round(total, 2),
           "validation_cpu_s": round(time.process_time() - cpu0, 2), "tables": steps}
    print(f"{'validation total':18s} {total:6.1f} s wall")
    if attest:
        from pipeline.ingest.attestation import attest_staged

        t0 = time.perf_counter()
        for table in EXTRACT_TABLES:
            t1 = time.perf_counter()
            att = attest_staged(con, manifest.extract_id, load_contract(table))
            steps[table]["attest_s"] = round(time.perf_counter() - t1, 2)
            steps[table]["attest_rows"] = att.rows_checked
            print(f"{table:18s} attested {att.rows_checked:>9,} of {att.rows_staged:,} rows  "
                  f"{steps[table]['attest_s']:6.2f} s  passed {att.success}", flush=True)
        out["attestation_s"] = round(time.perf_counter() - t0, 2)
    con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--people", type=int, default=1_000_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_validation"))
    p.add_argument("--attest", action="store_true", help="also time the GE attestation")
    p.add_argument("--no-record", action="store_true", help="do not append to the results")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = ensure_extract(args.people, args.work)
    load_before = os.getloadavg()
    result = run(folder, args.work / "warehouse.duckdb", args.attest)
    record = {"when": dt.datetime.now().isoformat(timespec="seconds"), "people": args.people,
              "cores": os.cpu_count(), "duckdb": duckdb.__version__,
              "python": platform.python_version(),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], **result}
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"recorded in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
