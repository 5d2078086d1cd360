"""Command-line entry point of the synthetic extract generator."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from pipeline.settings import Settings
from pipeline.synth.shapes import SHAPES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.synth",
        description="Write a synthetic police + clinic extract (landing folder) with a known "
        "treatment effect; the ground truth goes to a separate folder.")
    p.add_argument("--people", type=int, default=3000, help="people with a qualifying offence")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--extraction-date", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    p.add_argument("--true-hr", type=float, default=0.75, help="true hazard ratio for starters")
    p.add_argument("--completer-hr", type=float, default=None)
    p.add_argument("--confounding", type=float, default=1.0,
                   help="strength of confounded referral (0 = unconfounded)")
    p.add_argument("--shape", default="default", metavar="NAME",
                   help="a named degenerate shape for robustness tests (pipeline/synth/shapes.py):"
                   " " + ", ".join(SHAPES) + "; explicit options above win over the preset")
    p.add_argument("--list-shapes", action="store_true", help="list the shapes and exit")
    p.add_argument("--landing", type=Path, default=None, help="landing root (default: settings)")
    p.add_argument("--truth", type=Path, default=None, help="truth root (default: settings)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME",
                   help="inject a fault into the written extract (repeatable); names and what "
                   "the pipeline must do with each: pipeline/synth/faults.py")
    return p


def main(argv: list[str] | None = None) -> int:
    from pipeline.synth.generator import generate
    from pipeline.synth.landing import write_extract
    from pipeline.synth.params import SynthParams

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_shapes:
        for name, shape in SHAPES.items():
            print(f"{name}\t{shape.description}")
        return 0
    if args.shape not in SHAPES:
        parser.error(f"unknown shape {args.shape!r}; choose from: {', '.join(SHAPES)}")
    if args.fault:
        from pipeline.synth.faults import FAULTS

        unknown = [f for f in args.fault if f not in FAULTS]
        if unknown:
            parser.error(f"unknown fault {unknown[0]!r}; choose from: {', '.join(FAULTS)}")
    settings = Settings.from_env()
    params = SynthParams(n_people=args.people, seed=args.seed,
                         extraction_date=args.extraction_date, true_hr=args.true_hr,
                         completer_hr=args.completer_hr, confounding=args.confounding,
                         faults={name: True for name in args.fault}, shape=args.shape)
    t0 = time.perf_counter()
    extract = generate(params)
    folder = write_extract(extract, args.landing or settings.landing_dir,
                           args.truth or settings.truth_dir)
    if args.fault:
        from pipeline.synth.faults import apply_faults

        for injected in apply_faults(folder, args.fault, seed=args.seed):
            where = ", ".join(f"{t} lines {v[:5]}" for t, v in injected.lines.items())
            print(f"fault {injected.fault}: expect {injected.expect.outcome}"
                  + (f" ({where})" if where else ""))
    print(f"wrote {folder} ({len(extract.persons):,} people, {len(extract.offences):,} offences, "
          f"{len(extract.referrals):,} referrals, {len(extract.sessions):,} sessions) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
