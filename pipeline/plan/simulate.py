"""Simulation of the monthly looks: how often the verdict rule declares an effect.

Two levels (docs/sequential_simulation.md):

* ``canonical``: the sequential Z statistics of the primary Cox analysis have, asymptotically,
  the canonical joint distribution Z_k = W(t_k) / sqrt(t_k), W a Brownian motion with drift
  log(1/HR) sqrt(I_max) (Tsiatis 1981; Jennison & Turnbull 2000, ch. 3 and 13). Given the
  information fractions of the monthly looks, millions of look sequences cost seconds.
* ``world``: one synthetic world per replicate from the generator, cut at successive month
  ends; at each look a 1:1 comparison (each treated person with one untreated person of a
  clinic site, indexed at the same delay after their qualifying offence, fixed across looks so
  follow-up accumulates as in the real monitoring) analysed with the fast Cox model, and the
  plan's boundaries at the information fractions that replicate actually reached. This checks
  the estimator's finite-sample behaviour, which the canonical model assumes.

Only a boundary crossing can produce a verdict other than inconclusive
(``pipeline.report.verdict``), so the share of replicates with any crossing bounds the rate of
any "reduction" or "increase" verdict (clear or "some evidence").
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from pipeline.plan.spending import boundaries
from pipeline.synth.generator import generate
from pipeline.synth.monthly import month_ends
from pipeline.synth.params import SynthParams

Z975 = 1.959963984540054


def canonical_looks(t: np.ndarray, drift: float, n_rep: int, seed: int) -> np.ndarray:
    """Z statistics (n_rep x looks) with the canonical joint distribution (positive drift:
    Z grows with information; the sign convention of a reduction is applied by the caller)."""
    rng = np.random.default_rng(seed)
    dt_ = np.diff(np.concatenate([[0.0], t]))
    w = np.cumsum(rng.normal(drift * dt_, np.sqrt(dt_), size=(n_rep, len(t))), axis=1)
    return w / np.sqrt(t)


def first_crossing(z: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Look (1-based) of the first |Z| >= boundary per replicate, 0 if none."""
    hit = np.abs(z) >= bound[None, :]
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def summarise(first: np.ndarray, direction_ok: np.ndarray | None = None) -> dict:
    """Rate of any crossing with its Monte Carlo SE, and the median crossing look."""
    n = len(first)
    hit = first > 0 if direction_ok is None else (first > 0) & direction_ok
    rate = float(hit.mean())
    looks = first[hit]
    return {"replicates": n, "rate": rate, "mc_se": float(np.sqrt(rate * (1 - rate) / n)),
            "median_look": float(np.median(looks)) if len(looks) else None,
            "quartile_looks": [float(q) for q in np.quantile(looks, [0.25, 0.75])]
            if len(looks) else None}


# ----------------------------------------------------------------- one world per replicate
@dataclasses.dataclass(frozen=True)
class WorldDesign:
    """A replicate's world and its looks."""

    n_people: int = 3000
    true_hr: float = 1.0
    looks: int = 24
    last_extraction: dt.date = dt.date(2026, 10, 31)
    grace_days: int = 183
    first_index: dt.date = dt.date(2019, 6, 1)
    family: tuple[str, ...] = ("S2A", "S4A", "S2", "S4", "SPOB")


def _days(values: pd.Series) -> np.ndarray:
    """Day numbers (NaN where the date is missing)."""
    d = pd.to_datetime(values).to_numpy("datetime64[D]")
    return np.where(np.isnat(d), np.nan, d.astype("int64").astype(float))


def world_looks(design: WorldDesign, seed: int) -> pd.DataFrame:
    """Events, log HR and SE of the 1:1 proxy analysis at each monthly look of one world."""
    from pipeline.survival.cox import fit_cox

    params = SynthParams(n_people=design.n_people, seed=seed, true_hr=design.true_hr,
                         confounding=0.0, extraction_date=design.last_extraction)
    world = generate(params)
    rng = np.random.default_rng(seed + 7)
    tp = world.truth_persons
    q = _days(tp["qualifying_date"])
    idx = _days(tp["index_date"])
    treated = tp["treated"].to_numpy(bool)
    site = world.persons.set_index("person_key").loc[tp["person_key"], "site"].to_numpy()
    pool = np.flatnonzero(~treated & ~tp["referred"].to_numpy(bool)
                          & np.isin(site, ("SITE_A", "SITE_B", "SITE_C", "SITE_D")))
    tr = np.flatnonzero(treated & (idx >= _days(pd.Series([design.first_index]))[0]))
    ctrl = rng.choice(pool, size=len(tr), replace=False)
    unit = np.concatenate([tr, ctrl])
    start = np.concatenate([idx[tr], q[ctrl] + (idx[tr] - q[tr])])
    arm = np.concatenate([np.ones(len(tr)), np.zeros(len(ctrl))])
    off = world.offences
    key_pos = pd.Series(np.arange(len(tp)), index=tp["person_key"])
    proven = off["outcome"].isin(["convicted", "cautioned"]).to_numpy()
    sh = off["offence_code"].isin(design.family).to_numpy()
    o_person = key_pos.loc[off["person_key"]].to_numpy()
    o_day = _days(off["offence_date"])
    o_proof = _days(off["outcome_date"])
    death = _days(world.persons.set_index("person_key").loc[tp["person_key"], "date_of_death"])
    rows = []
    for cut in month_ends(design.last_extraction, design.looks):
        end = _days(pd.Series([cut]))[0] - design.grace_days
        keep = start + 30 <= end
        u, s, a = unit[keep], start[keep], arm[keep]
        ok = sh & proven & (o_proof <= o_day + design.grace_days) & (o_day <= end)
        frame = pd.DataFrame({"p": o_person[ok], "d": o_day[ok]})
        first = np.full(len(tp), np.inf)
        stop = np.minimum(np.nan_to_num(death, nan=np.inf)[u], end)
        # first proven stalking/harassment offence after each unit's start
        start_of = pd.Series(s, index=u)
        cand = frame[frame["p"].isin(u)]
        cand = cand[cand["d"].to_numpy() > start_of.loc[cand["p"]].to_numpy()]
        firsts = cand.groupby("p")["d"].min()
        first[firsts.index.to_numpy()] = firsts.to_numpy()
        ev_t = first[u]
        event = (ev_t <= stop).astype(float)
        time = np.where(event == 1, ev_t, stop) - s
        data = pd.DataFrame({"time": np.maximum(time, 0.5), "event": event, "treated": a})
        try:
            fit = fit_cox(data, "time", "event", ["treated"], compute_concordance=False)
            b = float(fit.coef["treated"])
            se = float(np.sqrt(fit.var.loc["treated", "treated"]))
        except ValueError:
            b, se = np.nan, np.nan
        rows.append({"cut": cut, "events": float(event.sum()), "log_hr": b, "se": se})
    return pd.DataFrame(rows)


def world_first_crossing(looks: pd.DataFrame, planned_events: float, alpha: float = 0.05,
                         spending: str = "obrien_fleming") -> tuple[int, float]:
    """First crossing look (0: none) and the final information fraction of one replicate,
    with boundaries at the information that replicate reached (as the pipeline computes)."""
    from pipeline.plan.looks import sequential_table
    from pipeline.plan.spec import AnalysisPlan

    plan = AnalysisPlan(planned_events=int(planned_events), alpha=alpha, spending=spending)
    est = np.exp(looks["log_hr"].to_numpy())
    lo = np.exp(looks["log_hr"] - Z975 * looks["se"]).to_numpy()
    hi = np.exp(looks["log_hr"] + Z975 * looks["se"]).to_numpy()
    table = sequential_table(looks["events"].to_numpy(), est, lo, hi, plan)
    crossed = np.flatnonzero(table["crossed"].to_numpy() != "")
    t_last = float(np.nanmax(table["information_fraction"])) if table["estimable"].any() else 0
    return (int(crossed[0]) + 1 if len(crossed) else 0), t_last


def equal_info_boundaries(t: np.ndarray, alpha: float = 0.05,
                          spending: str = "obrien_fleming") -> np.ndarray:
    """Boundaries at information fractions ``t`` (convenience for the canonical simulation)."""
    return boundaries(t, alpha, spending).z
