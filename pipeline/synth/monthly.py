"""Successive monthly extracts of one synthetic world (same people, later extraction dates).

The world is drawn once by the generator at the last extraction date; each earlier extract is
what the providers would have held on its own date: records made after it are absent, and what
was not yet known then is as the generator writes late information (outcomes not yet reached
are ``charged`` or ``pending`` without a date, no disposal; custody without a release date;
decisions not yet taken are ``pending`` without assessment; discharges not yet made are
``ongoing``; deaths after the date unknown). Follow-up therefore accumulates month by month,
which is what the sequential plan monitors.

``python -m pipeline.synth.monthly --months 4`` writes the extracts into the landing folder.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from pipeline.synth.generator import SyntheticExtract, generate
from pipeline.synth.params import SynthParams


def month_ends(last: dt.date, months: int) -> list[dt.date]:
    """The last day of each of the ``months`` months ending with ``last``'s month."""
    out = []
    first = last.replace(day=1)
    for k in range(months - 1, -1, -1):
        start = (pd.Timestamp(first) - pd.DateOffset(months=k)).date()
        out.append((pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date())
    return out


def _after(series: pd.Series, cut: dt.date) -> np.ndarray:
    values = pd.to_datetime(series)
    return (values > pd.Timestamp(cut)).to_numpy()


def cut_extract(world: SyntheticExtract, params: SynthParams, cut: dt.date) -> SyntheticExtract:
    """The extract as the providers would have delivered it on ``cut`` (see module docstring)."""
    off = world.offences[~_after(world.offences["recorded_date"], cut)].copy()
    late = _after(off["outcome_date"], cut)
    off.loc[late, "outcome"] = np.where(off.loc[late, "outcome"].isin(
        ["convicted", "acquitted"]), "charged", "pending")
    off.loc[late, ["outcome_date", "disposal", "custody_release_date"]] = None
    off.loc[_after(off["custody_release_date"], cut), "custody_release_date"] = None
    known = set(off["person_key"])
    persons = world.persons[world.persons["person_key"].isin(known)].copy()
    persons.loc[_after(persons["date_of_death"], cut), "date_of_death"] = None
    ref = world.referrals[~_after(world.referrals["referral_date"], cut)
                          & world.referrals["person_key"].isin(known)].copy()
    pending = _after(ref["decision_date"], cut)
    ref.loc[pending, "decision"] = "pending"
    ref.loc[pending, ["decision_date", "srp_type", "risk_rating"]] = None
    for col in ("personality_disorder", "psychosis", "substance_misuse"):
        ref.loc[pending, col] = pd.NA
    ongoing = _after(ref["discharge_date"], cut) | (ref["decision"] == "pending")
    ref.loc[ongoing & ref["discharge_reason"].notna(), "discharge_reason"] = "ongoing"
    ref.loc[ongoing, "discharge_date"] = None
    live = set(ref.loc[ref["decision"] != "pending", "referral_key"])
    ses = world.sessions[~_after(world.sessions["session_date"], cut)
                         & world.sessions["referral_key"].isin(live)]
    cut_params = dataclasses.replace(params, extraction_date=cut)
    truth = copy.deepcopy(world.truth)
    truth["extract_id"] = cut_params.extract_id
    truth["params"]["extraction_date"] = cut.isoformat()
    truth["world_extraction_date"] = params.extraction_date.isoformat()
    return SyntheticExtract(persons.reset_index(drop=True), off.reset_index(drop=True),
                            ref.reset_index(drop=True), ses.reset_index(drop=True),
                            world.truth_persons, truth)


def monthly_extracts(params: SynthParams, months: int) -> list[SyntheticExtract]:
    """``months`` successive month-end extracts of the world drawn with ``params``."""
    world = generate(params)
    return [cut_extract(world, params, d) for d in month_ends(params.extraction_date, months)]


def main(argv: list[str] | None = None) -> int:
    from pipeline.settings import Settings
    from pipeline.synth.landing import write_extract

    p = argparse.ArgumentParser(prog="python -m pipeline.synth.monthly",
                                description="Write successive monthly extracts of one world.")
    p.add_argument("--months", type=int, default=4)
    p.add_argument("--people", type=int, default=3000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--extraction-date", type=dt.date.fromisoformat,
                   default=dt.date(2026, 10, 31), help="the last extract's date")
    p.add_argument("--true-hr", type=float, default=0.75)
    args = p.parse_args(argv)
    settings = Settings.from_env()
    params = SynthParams(n_people=args.people, seed=args.seed, true_hr=args.true_hr,
                         extraction_date=args.extraction_date)
    for ex in monthly_extracts(params, args.months):
        folder = write_extract(ex, settings.landing_dir, settings.truth_dir)
        print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
