"""Sequential simulation over 24 monthly looks (docs/sequential_simulation.md).

    .venv/bin/python benchmarks/sequential_simulation.py [--world-reps N] [--canonical-reps N]

1. Information fractions of the 24 looks: the mean event counts of the 1:1 proxy analysis over
   a few generator worlds (``pipeline.plan.simulate.world_looks``), over the plan's planned
   events (400).
2. Canonical joint distribution at those fractions: share of replicates with any crossing
   under HR 1 (every verdict other than inconclusive needs one) and under HR 0.75 (power,
   crossing look); the same for an unadjusted 95% interval at every look, for contrast.
3. One generator world per replicate, cut at 24 month ends, Cox at each look, boundaries at the
   information that replicate reached.
Writes benchmarks/results/sequential_simulation.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pipeline.plan.simulate import (
    WorldDesign,
    canonical_looks,
    equal_info_boundaries,
    first_crossing,
    summarise,
    world_first_crossing,
    world_looks,
)

PLANNED = 400
OUT = Path(__file__).parent / "results" / "sequential_simulation.json"


def canonical(t: np.ndarray, reps: int, seed: int) -> dict:
    bound = equal_info_boundaries(t)
    naive = np.full(len(t), 1.959963984540054)
    out = {"t": [round(float(x), 4) for x in t], "boundary_z": [round(float(b), 4) for b in bound]}
    for name, hr in (("null", 1.0), ("hr_0.75", 0.75)):
        drift = -np.log(hr) * np.sqrt(PLANNED / 4)
        z = canonical_looks(t, drift, reps, seed + (hr < 1))
        first = first_crossing(z, bound)
        out[name] = {"any_verdict": summarise(first),
                     "reduction": summarise(first, z[np.arange(reps), np.maximum(first - 1, 0)]
                                            > 0),
                     "naive_95_any": summarise(first_crossing(z, naive))}
    return out


def world(design: WorldDesign, reps: int, seed: int) -> dict:
    firsts, last_t, events = [], [], []
    for r in range(reps):
        looks = world_looks(design, seed + r)
        f, t_last = world_first_crossing(looks, PLANNED)
        naive = np.abs(looks["log_hr"] / looks["se"]).to_numpy() >= 1.959963984540054
        firsts.append((f, int(naive.argmax()) + 1 if naive.any() else 0,
                       float(np.sign(looks["log_hr"].iloc[max(f - 1, 0)]))))
        last_t.append(t_last)
        events.append(looks["events"].to_numpy())
    arr = np.array(firsts)
    return {"n_people": design.n_people, "true_hr": design.true_hr,
            "any_verdict": summarise(arr[:, 0].astype(int)),
            "reduction": summarise(arr[:, 0].astype(int), arr[:, 2] < 0),
            "naive_95_any": summarise(arr[:, 1].astype(int)),
            "mean_final_information": float(np.mean(last_t)),
            "mean_events_first_last": [float(np.mean([e[0] for e in events])),
                                       float(np.mean([e[-1] for e in events]))]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--world-reps", type=int, default=100)
    p.add_argument("--canonical-reps", type=int, default=200_000)
    p.add_argument("--people", type=int, default=7000)
    p.add_argument("--seed", type=int, default=20261128)
    args = p.parse_args()
    t0 = time.perf_counter()
    pilot = [world_looks(WorldDesign(n_people=args.people, true_hr=1.0), args.seed + 10_000 + i)
             for i in range(3)]
    mean_events = np.mean([pl["events"].to_numpy() for pl in pilot], axis=0)
    t = np.minimum(np.maximum.accumulate(mean_events) / PLANNED, 1.0)
    t = np.unique(t)  # looks without new information spend nothing
    result = {"planned_events": PLANNED, "people": args.people,
              "pilot_mean_events": [round(float(e), 1) for e in mean_events],
              "canonical": canonical(t, args.canonical_reps, args.seed)}
    for name, hr in (("world_null", 1.0), ("world_hr_0.75", 0.75)):
        result[name] = world(WorldDesign(n_people=args.people, true_hr=hr), args.world_reps,
                             args.seed + (1 if hr < 1 else 0) * 100_000)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
