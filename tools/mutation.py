"""Run mutmut once per module group and print a killed / survived / score table.

Usage (inside the venv, from the project root; ``make mutation`` runs the first form)::

    python tools/mutation.py                      # every group, fresh, one worker
    python tools/mutation.py survival disclosure  # only these groups
    python tools/mutation.py --report             # table from the last run, no testing

Why a driver: mutmut 3 takes its settings from ``[tool.mutmut]`` only, so one ``mutmut run``
would pair every mutated module with one test selection. Each group here gets its own
``only_mutate`` and its own fast unit tests (the slow end-to-end tests would run for every
mutant of every function they touch); the driver sets both on mutmut's configuration object in
a fresh process per group and then calls ``mutmut run``. Every run starts from an empty
``mutants/`` because mutmut keeps a cached verdict for a mutant whose function did not change,
even after the tests did: a survivor would never be retried against a new test.

Results go to ``mutants/_scores/<group>.json`` (per file: counts by status and each
survivor's diff), which ``--report`` and the table read. The score is
(killed + timeout) / (all mutants - skipped); "no tests" counts as not killed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
SCORES = MUTANTS / "_scores"


@dataclass(frozen=True)
class Group:
    """Source files mutated together and the tests (paths or globs) run against them."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]


GROUPS = (
    Group("survival", ("pipeline/survival/kaplan_meier.py", "pipeline/survival/rmst.py"),
          ("tests/survival",)),
    Group("disclosure", ("pipeline/disclosure/*.py",), ("tests/disclosure",)),
    Group("identifiers", ("pipeline/ingest/identifiers.py",),
          ("tests/ingest/test_identifiers*.py",)),
    # the report's fast unit tests (not test_report.py / test_exports.py: end-to-end runs)
    Group("wording", ("pipeline/report/wording.py",),
          ("tests/report/test_wording*.py", "tests/report/test_sentences.py",
           "tests/report/test_verdict.py")),
)
GROUP_BY_NAME = {g.name: g for g in GROUPS}
TARGET = 0.90


def resolve_tests(group: Group) -> list[str]:
    """Existing test paths for a group (globs expanded, sorted); empty if none exist yet."""
    found: list[str] = []
    for pattern in group.tests:
        found += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    return found


def clear_mutants() -> None:
    """Empty ``mutants/`` but keep the score files of groups already run."""
    if not MUTANTS.exists():
        return
    for entry in MUTANTS.iterdir():
        if entry.name != SCORES.name:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def run_group_in_this_process(group: Group, tests: list[str], max_children: int) -> None:
    """Configure mutmut for one group, run it, and save counts and survivor diffs as JSON."""
    import mutmut.configuration as mutmut_config

    os.chdir(ROOT)
    cfg = mutmut_config._load_config()  # [tool.mutmut] from pyproject.toml, then override
    cfg.only_mutate = list(group.sources)
    cfg.pytest_add_cli_args_test_selection = list(tests)
    mutmut_config._config = cfg

    from mutmut.__main__ import cli

    try:
        cli(["run", "--max-children", str(max_children)], standalone_mode=False)
    except SystemExit as exc:  # mutmut calls exit() when it cannot run the tests
        if exc.code:
            raise
    save_scores(group)


def save_scores(group: Group) -> None:
    """Write ``mutants/_scores/<group>.json`` from mutmut's per-file ``.meta`` data."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    files = {}
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        counts: dict[str, int] = {}
        survivors = []
        for key, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            counts[status] = counts.get(status, 0) + 1
            if status != "killed" and status != "timeout":
                survivors.append({"mutant": key, "status": status,
                                  "diff": get_diff_for_mutant(key, path=path)})
        files[str(path)] = {"counts": counts, "survivors": survivors}
    SCORES.mkdir(parents=True, exist_ok=True)
    (SCORES / f"{group.name}.json").write_text(json.dumps(files, indent=1))


def score(counts: dict[str, int]) -> tuple[int, int, float]:
    """(detected, tested, score) with detected = killed + timeout, tested = all - skipped."""
    detected = counts.get("killed", 0) + counts.get("timeout", 0)
    tested = sum(counts.values()) - counts.get("skipped", 0)
    return detected, tested, (detected / tested if tested else float("nan"))


def print_table(names: list[str], show_survivors: bool) -> bool:
    """Print one row per mutated file; True when every file reaches the target score."""
    header = f"{'module':44} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} " \
             f"{'other':>5} {'score':>6}"
    print(header)
    print("-" * len(header))
    ok = True
    diffs = []
    for name in names:
        path = SCORES / f"{name}.json"
        if not path.exists():
            print(f"{name:44} (not run)")
            ok = False
            continue
        for file, entry in json.loads(path.read_text()).items():
            c = entry["counts"]
            if not c:  # nothing to mutate (e.g. an __init__.py of imports only)
                continue
            detected, tested, s = score(c)
            other = tested - detected - c.get("survived", 0) - c.get("no tests", 0)
            flag = "" if s >= TARGET else "  < 90%"
            ok = ok and s >= TARGET
            print(f"{file:44} {tested:7d} {detected:7d} {c.get('survived', 0):8d} "
                  f"{c.get('no tests', 0):8d} {other:5d} {s:6.1%}{flag}")
            diffs += [(file, m) for m in entry["survivors"]]
    if show_survivors and diffs:
        print("\nNot killed (each must be equivalent; see docs/mutation_testing.md):")
        for _file, m in diffs:
            print(f"\n# {m['mutant']} [{m['status']}]\n{m['diff']}")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the requested groups (all by default) one after another, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*",
                        help=f"module groups to run (default: all of {list(GROUP_BY_NAME)})")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut workers")
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument("--strict", action="store_true", help="exit 1 below 90%% on any file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one group here
    args = parser.parse_args(argv)

    if args.one:
        group = GROUP_BY_NAME[args.one]
        run_group_in_this_process(group, resolve_tests(group), args.max_children)
        return 0

    names = args.groups or list(GROUP_BY_NAME)
    unknown = sorted(set(names) - set(GROUP_BY_NAME))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUP_BY_NAME)}")
    if not args.report:
        started = time.monotonic()
        for name in names:
            group = GROUP_BY_NAME[name]
            tests = resolve_tests(group)
            (SCORES / f"{name}.json").unlink(missing_ok=True)
            if not tests:
                print(f"== {name}: no tests match {list(group.tests)}; skipped")
                continue
            print(f"== {name}: mutating {list(group.sources)} against {tests}", flush=True)
            clear_mutants()
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, __file__, "--one", name,
                                   "--max-children", str(args.max_children)], cwd=ROOT)
            print(f"== {name}: {time.monotonic() - t0:.0f} s (exit {proc.returncode})", flush=True)
        print(f"\nmutation testing took {time.monotonic() - started:.0f} s\n")
    ok = print_table(names, args.survivors)
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
