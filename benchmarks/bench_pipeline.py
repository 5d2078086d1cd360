"""End-to-end scale benchmark: the whole pipeline, from the command line, at 10k, 100k and 1M
people, with one table of wall time, CPU time and peak memory per asset (``make bench``).

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--sizes 10000,100000,1000000]
[--time-limit-min 20] [--mem-ceiling-gb 20] [--seed 42] [--work DIR] [--keep]``
(``make bench BENCH_SIZES=10000,100000 BENCH_ARGS="--time-limit-min 30"``).

For each size, in a fresh data folder (``--work``/n<size>, removed afterwards unless ``--keep``):

1. ``python -m pipeline.synth --people N --seed S`` writes the synthetic extract (timed, shown
   on its own row, not part of the run);
2. DuckDB's own ``SELECT count(*) FROM read_csv('<file>')`` is timed on each of its CSV files
   (best of two, fresh in-memory connection, files already in the page cache as they are for
   the run): the floor for ingest;
3. ``python -m pipeline run <extract_id>`` runs every asset in one process (Dagster's in-process
   executor), measured by ``benchmarks/measure.py``: a sampler thread reads CPU time and VmRSS of
   the run process and its children from /proc every 0.2 s; afterwards the run's Dagster event
   log (STEP_START / STEP_SUCCESS / STEP_FAILURE timestamps) cuts the samples into steps. Per
   step: wall = end - start, CPU = the sampled cumulative CPU at end minus at start (linear
   between samples: about +-0.2 s x cores on each step, so exponents of steps under a second
   are noise), peak = the highest sampled RSS of the process tree during the step. Every step
   runs in the same process, so a step's peak includes what earlier steps left in memory (the
   process's resident set, not the step's own allocation). Whole-run wall, CPU and peak come
   exactly from wait4 (ru_maxrss), and include interpreter start-up, imports and preflight;
4. ``benchmarks/plain_script.py`` does only the core analysis with pandas, statsmodels and
   lifelines on the same CSVs (measured the same way): the yardstick for the whole run.

A run that exceeds the time limit or the memory ceiling is stopped (SIGTERM, then SIGKILL) and
reported as "did not finish in N min (stopped in asset X at Y GB)"; the sizes after it still run.
Asset checks are Dagster steps of their own and have their own rows. "ingest + validation" is
every raw_* and staged_* step (their checks included).

Results: one table printed, and ``benchmarks/results/<date>-<commit>.md`` and ``.json`` with a
description of the machine (CPU, cores, RAM, load, Python and package versions, git commit and
files modified in the working tree).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Measurement, machine_description, run_measured  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
EXPONENT_TARGET = 1.15
EXPONENT_PAIR = (100_000, 1_000_000)
MIN_CPU_FOR_EXPONENT = 1.0  # CPU seconds at the larger size below which a step cannot miss
READ_CSV_FACTOR = 2.0
SIZE_TARGETS = {100_000: (60.0, 3.0), 1_000_000: (600.0, 12.0)}  # wall s, peak GB
INGEST_PREFIXES = ("raw_", "staged_")


@dataclass
class StepResult:
    step: str
    start: float
    end: float | None  # None: still running when the run stopped
    status: str  # success | failure | stopped
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_gb: float = 0.0


@dataclass
class SizeResult:
    people: int
    status: str  # finished | did not finish | failed | not run
    note: str = ""
    exit_code: int | None = None
    run: dict | None = None
    generator: dict | None = None
    steps: list[StepResult] = field(default_factory=list)
    read_csv: dict | None = None
    ingest_validation_wall_s: float | None = None
    plain: dict | None = None


def summary(m: Measurement) -> dict:
    return {"wall_s": round(m.wall_s, 3), "cpu_s": round(m.cpu_s, 3),
            "peak_rss_gb": round(m.peak_rss_gb, 3), "exit_code": m.exit_code,
            "stopped": m.stopped}


def label(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


# --- the steps of a run, from its Dagster event log -----------------------------------------

def step_events(dagster_home: Path) -> list[tuple[str, str, float]]:
    """(step key, START|SUCCESS|FAILURE, timestamp) of the one run recorded under
    ``dagster_home``, in log order ([] when no run was recorded)."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return []
    kinds = {dg.DagsterEventType.STEP_START: "START", dg.DagsterEventType.STEP_SUCCESS:
             "SUCCESS", dg.DagsterEventType.STEP_FAILURE: "FAILURE"}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return []
        entries = instance.all_logs(runs[0].run_id, of_type=set(kinds))
        return [(e.step_key, kinds[e.dagster_event.event_type], e.timestamp)
                for e in entries if e.dagster_event and e.step_key]


def attribute(events: list[tuple[str, str, float]], m: Measurement) -> list[StepResult]:
    """Steps with wall, CPU and peak RSS cut out of the measurement's samples."""
    steps: dict[str, StepResult] = {}
    for key, kind, t in events:
        if kind == "START":
            steps[key] = StepResult(key, t, None, "stopped")
        elif key in steps:
            steps[key].end, steps[key].status = t, kind.lower()
    end_of_run = m.started + m.wall_s
    for s in steps.values():
        end = s.end if s.end is not None else end_of_run
        s.wall_s = max(end - s.start, 0.0)
        s.cpu_s = m.cpu_between(s.start, end)
        s.peak_rss_gb = m.peak_between(s.start, end)
    return sorted(steps.values(), key=lambda s: s.start)


def stop_note(m: Measurement, steps: list[StepResult], time_limit_s: float,
              mem_ceiling_gb: float) -> str:
    running = [s.step for s in steps if s.status == "stopped"]
    where = f"in asset {running[-1]}" if running else (
        f"after asset {steps[-1].step}" if steps else "before the first asset")
    gb = m.rss_at_stop_gb or 0.0
    if m.stopped == "memory":
        return (f"did not finish: over the {mem_ceiling_gb:g} GB memory ceiling "
                f"(stopped {where} at {gb:.2f} GB)")
    return f"did not finish in {time_limit_s / 60:g} min (stopped {where} at {gb:.2f} GB)"


# --- one size ---------------------------------------------------------------------------------

def time_read_csv(folder: Path, repeats: int = 2) -> dict:
    """DuckDB's raw ``count(*) FROM read_csv`` per CSV file (best of ``repeats``), seconds."""
    import duckdb

    files = {}
    for path in sorted(folder.glob("*.csv")):
        best = math.inf
        for _ in range(repeats):
            con = duckdb.connect()
            con.execute("SET enable_progress_bar = false")
            t0 = time.perf_counter()
            con.sql(f"SELECT count(*) FROM read_csv('{path}')").fetchall()
            best = min(best, time.perf_counter() - t0)
            con.close()
        files[path.name] = round(best, 4)
    return {"files": files, "total_s": round(sum(files.values()), 4)}


def env_for(data: Path) -> dict[str, str]:
    """The environment of a run whose every folder lies under ``data`` (nothing inherited
    from the caller's STALKING_EVAL_* or DAGSTER_HOME)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STALKING_EVAL_") and k != "DAGSTER_HOME"}
    home = data / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env.update(STALKING_EVAL_DATA=str(data), DAGSTER_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def measure_run(command: list[str], env: dict[str, str], log_path: Path, *,
                time_limit_s: float, mem_ceiling_gb: float
                ) -> tuple[Measurement, list[StepResult]]:
    """Run a Dagster command measured and cut into its steps (from ``env``'s DAGSTER_HOME)."""
    with open(log_path, "wb") as out:
        m = run_measured(command, env=env, cwd=ROOT, time_limit_s=time_limit_s,
                         mem_ceiling_gb=mem_ceiling_gb, stdout=out, stderr=subprocess.STDOUT)
    return m, attribute(step_events(Path(env["DAGSTER_HOME"])), m)


def bench_size(people: int, *, work: Path, seed: int, time_limit_s: float,
               mem_ceiling_gb: float, python: str = sys.executable, plain: bool = True,
               keep: bool = False, generator_limit_s: float | None = None,
               log=print) -> SizeResult:
    """Generate, time read_csv, run the pipeline and the plain script for one size. The time
    limit and memory ceiling apply to the run and to the plain script, each on its own; the
    generator has ``generator_limit_s`` (default: the same time limit)."""
    base = work / f"n{people}"
    if base.exists():
        shutil.rmtree(base)
    data = base / "data"
    env = env_for(data)
    logs = base / "logs"
    logs.mkdir(parents=True)
    result = SizeResult(people, "not run")
    try:
        log(f"[{label(people)}] generating the extract")
        with open(logs / "generator.log", "wb") as out:
            gen = run_measured([python, "-m", "pipeline.synth", "--people", str(people),
                                "--seed", str(seed)], env=env, cwd=ROOT,
                               time_limit_s=generator_limit_s or time_limit_s,
                               mem_ceiling_gb=mem_ceiling_gb, stdout=out,
                               stderr=subprocess.STDOUT)
        result.generator = summary(gen)
        if not gen.finished or gen.exit_code != 0:
            result.status = "failed"
            how = (f"stopped by the {gen.stopped} limit" if gen.stopped
                   else f"failed (exit {gen.exit_code})")
            result.note = f"generator {how}; see {logs / 'generator.log'}"
            return result
        landing = data / "landing"
        (folder,) = [p for p in landing.iterdir() if p.is_dir()]
        extract_id = folder.name

        log(f"[{label(people)}] DuckDB read_csv of the raw files")
        result.read_csv = time_read_csv(folder)

        log(f"[{label(people)}] python -m pipeline run {extract_id} "
            f"(limit {time_limit_s / 60:g} min, {mem_ceiling_gb:g} GB)")
        run, result.steps = measure_run([python, "-m", "pipeline", "run", extract_id], env,
                                        logs / "run.log", time_limit_s=time_limit_s,
                                        mem_ceiling_gb=mem_ceiling_gb)
        result.run, result.exit_code = summary(run), run.exit_code
        if not run.finished:
            result.status = "did not finish"
            result.note = stop_note(run, result.steps, time_limit_s, mem_ceiling_gb)
        elif run.exit_code in (0, 3):  # 3: published, a warning check failed
            result.status = "finished"
        else:
            failed = [s.step for s in result.steps if s.status == "failure"]
            result.status = "failed"
            result.note = (f"failed (exit {run.exit_code}"
                           f"{', in asset ' + failed[0] if failed else ''}); see "
                           f"{logs / 'run.log'}")
        ingest = [s for s in result.steps if s.step.startswith(INGEST_PREFIXES)]
        past_ingest = run.finished or len(ingest) < len(result.steps)  # a later step began
        if ingest and past_ingest and all(s.status == "success" for s in ingest):
            result.ingest_validation_wall_s = round(sum(s.wall_s for s in ingest), 3)

        if plain:
            log(f"[{label(people)}] plain pandas + statsmodels + lifelines script")
            with open(logs / "plain_script.log", "wb") as out:
                p = run_measured([python, str(ROOT / "benchmarks" / "plain_script.py"),
                                  str(folder)], env=env, cwd=ROOT, time_limit_s=time_limit_s,
                                 mem_ceiling_gb=mem_ceiling_gb, stdout=out,
                                 stderr=subprocess.STDOUT)
            result.plain = summary(p)
        return result
    finally:
        if not keep:
            shutil.rmtree(data, ignore_errors=True)  # logs stay


# --- the table --------------------------------------------------------------------------------

def exponent(small: float | None, large: float | None, n_small: int, n_large: int
             ) -> float | None:
    if not small or not large or small <= 0 or large <= 0:
        return None
    return math.log(large / small) / math.log(n_large / n_small)


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def step_order(results: list[SizeResult]) -> list[str]:
    """Steps in the order they ran at the largest size that got furthest, then any others."""
    order: list[str] = []
    for r in sorted(results, key=lambda r: (len(r.steps), r.people), reverse=True):
        order += [s.step for s in r.steps if s.step not in order]
    return order


def build_report(results: list[SizeResult], machine: dict, options: dict) -> dict:
    """Everything the table shows, as JSON-ready data (also what the test inspects)."""
    sizes = [r.people for r in results]
    pairs = list(zip(sizes, sizes[1:], strict=False))
    by_size = {r.people: {s.step: s for s in r.steps} for r in results}
    rows = []
    for step in step_order(results):
        cells = {}
        for r in results:
            s = by_size[r.people].get(step)
            cells[str(r.people)] = None if s is None else {
                "wall_s": round(s.wall_s, 3), "cpu_s": round(s.cpu_s, 3),
                "peak_rss_gb": round(s.peak_rss_gb, 3), "status": s.status}
        exps = {}
        for a, b in pairs:
            sa, sb = by_size[a].get(step), by_size[b].get(step)
            ok = sa and sb and sa.status == "success" and sb.status == "success"
            exps[f"{a}->{b}"] = (round(exponent(sa.cpu_s, sb.cpu_s, a, b), 3)
                                 if ok and exponent(sa.cpu_s, sb.cpu_s, a, b) is not None
                                 else None)
        rows.append({"step": step, "sizes": cells, "cpu_exponents": exps,
                     "exponent_target": exponent_verdict(step, by_size, exps)})
    return {"machine": machine, "options": options, "sizes": [size_json(r) for r in results],
            "steps": rows, "targets": targets(results, rows)}


def exponent_verdict(step: str, by_size: dict, exps: dict) -> str:
    a, b = EXPONENT_PAIR
    value = exps.get(f"{a}->{b}")
    if value is None:
        return "not measured"
    if value <= EXPONENT_TARGET:
        return "met"
    if by_size[b][step].cpu_s < MIN_CPU_FOR_EXPONENT:
        return f"met (< {MIN_CPU_FOR_EXPONENT:g} s CPU)"
    return "NOT met"


def size_json(r: SizeResult) -> dict:
    ratio_read = (round(r.ingest_validation_wall_s / r.read_csv["total_s"], 2)
                  if r.ingest_validation_wall_s and r.read_csv and r.read_csv["total_s"] > 0
                  else None)
    return {"people": r.people, "status": r.status, "note": r.note, "exit_code": r.exit_code,
            "run": r.run, "generator": r.generator, "read_csv": r.read_csv,
            "ingest_validation_wall_s": r.ingest_validation_wall_s,
            "ingest_validation_vs_read_csv": ratio_read, "plain_script": r.plain,
            "run_vs_plain_script": run_vs_plain(r)}


def run_vs_plain(r: SizeResult) -> dict | None:
    """Whole run wall / plain script wall; a bound when one of them was stopped."""
    if not r.run or not r.plain:
        return None
    run, plain = r.run["wall_s"], r.plain["wall_s"]
    if r.run["stopped"] and r.plain["stopped"]:
        return {"ratio": None, "bound": None}
    if r.plain["stopped"]:
        return {"ratio": round(run / plain, 2), "bound": "at most"}
    if r.run["stopped"]:
        return {"ratio": round(run / plain, 2), "bound": "at least"}
    if r.status != "finished" or r.plain["exit_code"] != 0:
        return None
    return {"ratio": round(run / plain, 2), "bound": None}


def targets(results: list[SizeResult], rows: list[dict]) -> list[dict]:
    """The issue's targets with met / NOT met / not measured."""
    by = {r.people: r for r in results}
    out = []
    for n, (wall, gb) in SIZE_TARGETS.items():
        r = by.get(n)
        if r is None or r.run is None:
            w = m = "not measured"
            wv = mv = None
        elif r.status == "finished":
            wv, mv = r.run["wall_s"], r.run["peak_rss_gb"]
            w, m = ("met" if wv < wall else "NOT met"), ("met" if mv < gb else "NOT met")
        else:
            wv, mv = r.run["wall_s"], r.run["peak_rss_gb"]
            w = "NOT met" if wv >= wall or r.status == "did not finish" else "not measured"
            m = "NOT met" if mv >= gb else ("not measured" if r.status != "finished" else "met")
        out.append({"target": f"{label(n)}: whole run < {wall:g} s", "value": wv, "verdict": w})
        out.append({"target": f"{label(n)}: peak memory < {gb:g} GB", "value": mv, "verdict": m})
    a, b = EXPONENT_PAIR
    verdicts = [(row["step"], row["exponent_target"]) for row in rows]
    measured = [v for _, v in verdicts if v != "not measured"]
    missed = [s for s, v in verdicts if v == "NOT met"]
    out.append({"target": f"every asset: CPU growth exponent {label(a)}->{label(b)} <= "
                f"{EXPONENT_TARGET}", "value": missed or None,
                "verdict": ("not measured" if not measured
                            else "NOT met" if missed else "met")})
    r = by.get(b)
    ratio = size_json(r)["ingest_validation_vs_read_csv"] if r else None
    out.append({"target": f"{label(b)}: ingest + validation within {READ_CSV_FACTOR:g}x "
                "DuckDB read_csv", "value": ratio,
                "verdict": ("not measured" if ratio is None
                            else "met" if ratio <= READ_CSV_FACTOR else "NOT met")})
    return out


def markdown(report: dict) -> str:
    """The one table (plus a header line on the machine and the notes under it)."""
    m = report["machine"]
    sizes = report["sizes"]
    names = [label(s["people"]) for s in sizes]
    consecutive = list(zip(sizes, sizes[1:], strict=False))
    pairs = [f"{a['people']}->{b['people']}" for a, b in consecutive]
    pair_names = [f"{label(a['people'])}→{label(b['people'])}" for a, b in consecutive]
    a, b = EXPONENT_PAIR
    head = (["asset (Dagster step)"]
            + [f"{n} {h}" for n in names for h in ("wall s", "CPU s", "peak GB")]
            + [f"CPU exp. {p}" for p in pair_names]
            + ["target", "met?"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(cells: list[str]) -> None:
        lines.append("| " + " | ".join(cells) + " |")

    for r in report["steps"]:
        cells = [r["step"]]
        for s in sizes:
            c = r["sizes"][str(s["people"])]
            if c is None:
                cells += ["—", "—", "—"]
            else:
                mark = {"success": "", "failure": " (failed)", "stopped": " (stopped)"}
                cells += [_fmt(c["wall_s"]) + mark[c["status"]], _fmt(c["cpu_s"]),
                          _fmt(c["peak_rss_gb"], 2)]
        cells += [_fmt(r["cpu_exponents"].get(p), 2) for p in pairs]
        cells += [f"CPU exp. {label(a)}→{label(b)} ≤ {EXPONENT_TARGET}", r["exponent_target"]]
        row(cells)
    tgt = {t["target"]: t for t in report["targets"]}

    def size_target_text() -> tuple[str, str]:
        texts, verdicts = [], []
        for n, (wall, gb) in SIZE_TARGETS.items():
            texts.append(f"{label(n)}: < {wall:g} s, < {gb:g} GB")
            w = tgt[f"{label(n)}: whole run < {wall:g} s"]["verdict"]
            g = tgt[f"{label(n)}: peak memory < {gb:g} GB"]["verdict"]
            verdicts.append(f"{label(n)}: time {w}, memory {g}")
        return "; ".join(texts), "; ".join(verdicts)

    cells = ["**whole run** (python -m pipeline run)"]
    for s in sizes:
        if s["run"] is None:
            cells += [s["note"] or s["status"], "—", "—"]
        elif s["status"] == "did not finish":
            cells += [s["note"], _fmt(s["run"]["cpu_s"]), _fmt(s["run"]["peak_rss_gb"], 2)]
        else:
            w = _fmt(s["run"]["wall_s"]) + ("" if s["status"] == "finished" else
                                             f" ({s['note'] or s['status']})")
            cells += [w, _fmt(s["run"]["cpu_s"]), _fmt(s["run"]["peak_rss_gb"], 2)]
    cells += [""] * len(pairs) + list(size_target_text())
    row(cells)

    cells = ["ingest + validation (raw_*, staged_* steps) / DuckDB read_csv"]
    for s in sizes:
        rc = s["read_csv"]
        ratio = s["ingest_validation_vs_read_csv"]
        cells += [(f"{_fmt(s['ingest_validation_wall_s'])} / {rc['total_s']:.2f} s = "
                   f"{ratio:.1f}×") if ratio is not None else "—", "", ""]
    t = tgt[f"{label(b)}: ingest + validation within {READ_CSV_FACTOR:g}x DuckDB read_csv"]
    cells += [""] * len(pairs) + [f"{label(b)}: ≤ {READ_CSV_FACTOR:g}×", t["verdict"]]
    row(cells)

    cells = ["plain pandas + statsmodels + lifelines script (whole run / script)"]
    for s in sizes:
        p, ratio = s["plain_script"], s["run_vs_plain_script"]
        if p is None:
            cells += ["—", "—", "—"]
            continue
        wall = _fmt(p["wall_s"]) + (" (stopped)" if p["stopped"] else
                                    f" (exit {p['exit_code']})" if p["exit_code"] else "")
        if ratio and ratio["ratio"] is not None:
            bound = {"at most": "≤ ", "at least": "≥ ", None: ""}[ratio["bound"]]
            wall += f"; run/script {bound}{ratio['ratio']:.1f}×"
        cells += [wall, _fmt(p["cpu_s"]), _fmt(p["peak_rss_gb"], 2)]
    cells += [""] * len(pairs) + ["(information)", ""]
    row(cells)

    cells = ["generator (python -m pipeline.synth; not part of the run)"]
    for s in sizes:
        g = s["generator"]
        cells += (["—", "—", "—"] if g is None else
                  [_fmt(g["wall_s"]), _fmt(g["cpu_s"]), _fmt(g["peak_rss_gb"], 2)])
    cells += [""] * len(pairs) + ["(information)", ""]
    row(cells)
    t = tgt[f"every asset: CPU growth exponent {label(a)}->{label(b)} <= {EXPONENT_TARGET}"]
    cells = [f"**every asset: CPU exp. {label(a)}→{label(b)} ≤ {EXPONENT_TARGET}**"]
    cells += [""] * (3 * len(sizes) + len(pairs))
    cells += [("not met by: " + ", ".join(t["value"])) if t["value"] else "",
              t["verdict"]]
    row(cells)

    modified = len(m["git_modified_files"])
    intro = (f"Pipeline scale benchmark, {m['date']}, commit {m['git_commit']}"
             f"{f' (+{modified} modified files)' if modified else ''}"
             f": {m['cpu_model']}, {m['cores_available']} of {m['cores']} cores, "
             f"{m['ram_gb']} GB RAM, load {m['load_average_at_start']} at start, Python "
             f"{m['python']}, dagster {m['packages'].get('dagster')}, duckdb "
             f"{m['packages'].get('duckdb')}; limits {report['options']['time_limit_min']:g} "
             f"min and {report['options']['mem_ceiling_gb']:g} GB per size.")
    notes = ("Per step: wall from the run's Dagster STEP_START/STEP_SUCCESS events; CPU and "
             "peak RSS from /proc samples of the run process tree every 0.2 s (all steps run "
             "in one process: a step's peak includes what earlier steps left resident). Whole "
             "run: exact (wait4), including start-up and imports. CPU exponent = log(CPU "
             "ratio) / log(size ratio); steps under 1 s of CPU are within sampling noise.")
    return "\n".join([intro, "", *lines, "", notes, ""])


def write_results(report: dict, text: str, out: Path = RESULTS) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{dt.date.today().isoformat()}-{report['machine']['git_commit']}"
    k, name = 1, stem
    while (out / f"{name}.md").exists() or (out / f"{name}.json").exists():
        k += 1
        name = f"{stem}-{k}"
    md, js = out / f"{name}.md", out / f"{name}.json"
    md.write_text(text)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return md, js


def parse_sizes(text: str) -> list[int]:
    sizes = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    if not sizes or any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers: {text!r}")
    return sorted(set(sizes))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                   help="people per extract, comma-separated (10000,100000,1000000)")
    p.add_argument("--time-limit-min", type=float, default=20.0,
                   help="stop a size's run after this many minutes (20)")
    p.add_argument("--mem-ceiling-gb", type=float, default=20.0,
                   help="stop a size's run above this resident memory (20)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work", type=Path, default=ROOT / "data" / "bench",
                   help="working folder; each size gets a fresh data folder in it (data/bench)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--no-plain", action="store_true", help="skip the plain script")
    p.add_argument("--keep", action="store_true", help="keep each size's data folder")
    args = p.parse_args(argv)
    machine = machine_description(ROOT)
    options = {"sizes": args.sizes, "time_limit_min": args.time_limit_min,
               "mem_ceiling_gb": args.mem_ceiling_gb, "seed": args.seed,
               "sampling_interval_s": 0.2, "plain_script": not args.no_plain}
    results = []
    for n in args.sizes:
        results.append(bench_size(n, work=args.work, seed=args.seed,
                                  time_limit_s=args.time_limit_min * 60,
                                  mem_ceiling_gb=args.mem_ceiling_gb, plain=not args.no_plain,
                                  keep=args.keep,
                                  log=lambda s: print(s, file=sys.stderr, flush=True)))
    report = build_report(results, machine, options)
    text = markdown(report)
    md, js = write_results(report, text, args.out)
    print(text)
    print(f"written: {md.relative_to(ROOT) if md.is_relative_to(ROOT) else md}, "
          f"{js.relative_to(ROOT) if js.is_relative_to(ROOT) else js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
