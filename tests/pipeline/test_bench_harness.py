"""The scale benchmark's harness (benchmarks/bench_pipeline.py, make bench) on tiny inputs:
per-step attribution from a real Dagster run's event log, the table and JSON, and the time
and memory limits that stop a run instead of letting it hang."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_pipeline as bp  # noqa: E402
import measure  # noqa: E402

pytestmark = pytest.mark.slow

TINY_JOB = textwrap.dedent("""
    import time
    import dagster as dg

    def burn(seconds):
        t = time.process_time()
        while time.process_time() - t < seconds:
            pass

    @dg.asset
    def first():
        burn(0.5)
        return 1

    @dg.asset
    def second(first):
        burn(0.5)
        return 2

    @dg.asset
    def third(second):
        block = bytearray(300 * 1024 * 1024)  # resident: written below
        block[::4096] = b"x" * len(block[::4096])
        burn(0.5)
        return len(block)

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([first, second, third], instance=instance).success
""")


def test_table_and_json_from_a_dagster_run(tmp_path):
    """A three-asset Dagster job through the harness: a row per asset with positive wall, CPU
    and memory, the third asset's 300 MB visible, the machine description in the JSON."""
    script = tmp_path / "job.py"
    script.write_text(TINY_JOB)
    env = bp.env_for(tmp_path / "data")
    run, steps = bp.measure_run([sys.executable, str(script)], env, tmp_path / "run.log",
                                time_limit_s=120, mem_ceiling_gb=4)
    assert run.finished and run.exit_code == 0, (tmp_path / "run.log").read_text()
    assert [s.step for s in steps] == ["first", "second", "third"]
    for s in steps:
        assert s.status == "success" and s.wall_s > 0 and s.peak_rss_gb > 0
        assert s.cpu_s > 0.2, s  # 0.5 s burnt, sampled every 0.2 s
    assert steps[2].peak_rss_gb > steps[0].peak_rss_gb + 0.2
    assert run.cpu_s >= sum(s.cpu_s for s in steps) - 0.5

    result = bp.SizeResult(500, "finished", exit_code=0, run=bp.summary(run), steps=steps,
                           read_csv={"files": {"a.csv": 0.1}, "total_s": 0.1},
                           ingest_validation_wall_s=None)
    report = bp.build_report([result], measure.machine_description(bp.ROOT),
                             {"time_limit_min": 2, "mem_ceiling_gb": 4})
    text = bp.markdown(report)
    for name in ("first", "second", "third", "whole run", "CPU exp. 100k→1M ≤ 1.15"):
        assert name in text
    assert [r["step"] for r in report["steps"]] == ["first", "second", "third"]
    md, js = bp.write_results(report, text, tmp_path / "results")
    assert md.read_text() == text
    data = json.loads(js.read_text())
    machine = data["machine"]
    for key in ("cpu_model", "cores", "ram_gb", "python", "git_commit", "packages"):
        assert machine[key], key
    assert machine["packages"]["dagster"] and machine["packages"]["duckdb"]
    assert data["sizes"][0]["run"]["wall_s"] > 0
    assert {t["verdict"] for t in data["targets"]} == {"not measured"}


def test_time_limit_reports_did_not_finish(tmp_path):
    """The real pipeline on a 500-person extract with a limit of a few seconds is stopped and
    reported as 'did not finish in N min (stopped in/before ... at Y GB)', not waited for."""
    result = bp.bench_size(500, work=tmp_path, seed=3, time_limit_s=6, mem_ceiling_gb=8,
                           generator_limit_s=120, plain=False, log=lambda _: None)
    assert result.generator["exit_code"] == 0
    assert result.read_csv["total_s"] > 0 and len(result.read_csv["files"]) == 4
    assert result.status == "did not finish", result.note
    assert result.note.startswith("did not finish in 0.1 min (stopped ")
    assert " GB)" in result.note
    assert result.run["wall_s"] < 6 + 20  # SIGTERM, or SIGKILL 15 s later
    assert all(s.wall_s > 0 for s in result.steps)
    text = bp.markdown(bp.build_report([result], measure.machine_description(bp.ROOT),
                                       {"time_limit_min": 0.1, "mem_ceiling_gb": 8}))
    assert "did not finish in 0.1 min" in text
    assert not (tmp_path / "n500" / "data").exists()  # the data folder is removed


def test_memory_ceiling_stops_the_command(tmp_path):
    grow = ("import time\nblocks = []\nfor _ in range(40):\n"
            "    blocks.append(bytearray(50 * 1024 * 1024)); time.sleep(0.1)\n")
    m = measure.run_measured([sys.executable, "-c", grow], time_limit_s=60,
                             mem_ceiling_gb=0.3)
    assert m.stopped == "memory" and not m.finished
    assert m.rss_at_stop_gb > 0.3 and m.wall_s < 15


def test_exponent_and_sizes():
    assert bp.exponent(1.0, 10.0, 100_000, 1_000_000) == pytest.approx(1.0)
    assert bp.exponent(2.0, 2.0 * 10**1.15, 10, 100) == pytest.approx(1.15)
    assert bp.exponent(0.0, 1.0, 10, 100) is None
    assert bp.parse_sizes("100000,10000") == [10_000, 100_000]
    assert bp.label(1_000_000) == "1M" and bp.label(10_000) == "10k"
