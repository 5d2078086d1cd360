"""Time nearest-neighbour matching: 1,000 treated against 100,000 candidates.

Run: ``.venv/bin/python benchmarks/bench_matching.py`` (not a test; prints timings).

Variants
* ordinary: one row per person, `match_from_groups` (the pairs of each site, then
  `match_nearest`), exact matching on site, 1:1 and 1:2, caliper 0.2 SD of the logit.
* risk sets: a pair table built as a cohort step would (same site, candidate eligible on
  the treated person's index date, candidate logit measured as of that date), then
  `match_nearest`. With 20 sites this is a few million eligible pairs.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from pipeline.comparison import match_from_groups, match_nearest

N_TREATED = 1_000
N_CANDIDATES = 100_000
N_SITES = 20


def _timed(label: str, fn, repeat: int = 3):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<58s} {best:7.3f} s")
    return out


def ordinary(rng: np.random.Generator) -> pd.DataFrame:
    n = N_TREATED + N_CANDIDATES
    treated = np.r_[np.ones(N_TREATED, int), np.zeros(N_CANDIDATES, int)]
    logit = rng.normal(-4.0, 1.0, n) + 1.0 * treated
    return pd.DataFrame(
        {
            "person_id": rng.permutation(n) + 1,
            "treated": treated,
            "logit": logit,
            "site": rng.integers(0, N_SITES, n),
        }
    )


def risk_set_pairs(rng: np.random.Generator) -> pd.DataFrame:
    """Eligible (treated, candidate) pairs by site and index date, scores as of the date."""
    t_site = rng.integers(0, N_SITES, N_TREATED)
    t_date = rng.integers(0, 3650, N_TREATED)
    t_logit = rng.normal(-3.0, 1.0, N_TREATED)
    c_site = rng.integers(0, N_SITES, N_CANDIDATES)
    c_entry = rng.integers(-1000, 3650, N_CANDIDATES)
    c_exit = c_entry + rng.integers(200, 4000, N_CANDIDATES)
    c_base = rng.normal(-4.0, 1.0, N_CANDIDATES)
    parts = []
    for s in range(N_SITES):
        ti = np.flatnonzero(t_site == s)
        ci = np.flatnonzero(c_site == s)
        ok = (c_entry[ci][None, :] <= t_date[ti][:, None]) & (
            t_date[ti][:, None] < c_exit[ci][None, :]
        )
        a, b = np.nonzero(ok)
        tt, cc = ti[a], ci[b]
        parts.append(
            pd.DataFrame(
                {
                    "treated_id": tt + 1,
                    "control_id": cc + 1_000_001,
                    "treated_logit": t_logit[tt],
                    # covariates (age, history) change with the date: drift in the score
                    "control_logit": c_base[cc] + 0.0002 * (t_date[tt] - c_entry[cc]),
                    "index_date": t_date[tt],
                    "site": s,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    rng = np.random.default_rng(2024)
    df = ordinary(rng)
    print(f"ordinary: {N_TREATED:,} treated, {N_CANDIDATES:,} candidates")
    # match_from_groups builds every treated x control pair of a stratum (it adapts one row
    # per person to match_nearest), so the ordinary case is timed within sites only
    r = _timed(
        "  match_from_groups 1:1, caliper 0.2, exact site",
        lambda: match_from_groups(df, "person_id", "treated", "logit", exact="site"),
    )
    print(
        f"    matched {r.counts['n_treated_matched']}, unmatched {r.counts['n_treated_unmatched']}"
    )
    _timed(
        "  match_from_groups 1:2, caliper 0.2, exact site",
        lambda: match_from_groups(df, "person_id", "treated", "logit", exact="site", k=2),
    )
    _timed(
        "  match_from_groups 1:2, with replacement, exact site",
        lambda: match_from_groups(
            df, "person_id", "treated", "logit", exact="site", k=2, replace=True
        ),
    )

    t0 = time.perf_counter()
    pairs = risk_set_pairs(rng)
    build = time.perf_counter() - t0
    print(f"risk sets: {len(pairs):,} eligible pairs (built in {build:.2f} s)")
    r = _timed("  match_nearest 1:1, caliper 0.2", lambda: match_nearest(pairs))
    print(
        f"    matched {r.counts['n_treated_matched']}, unmatched {r.counts['n_treated_unmatched']}"
    )
    _timed("  match_nearest 1:2, caliper 0.2", lambda: match_nearest(pairs, k=2))
    _timed("  match_nearest 1:1, no caliper", lambda: match_nearest(pairs, caliper=None))
    _timed(
        "  match_nearest 1:2, with replacement",
        lambda: match_nearest(pairs, k=2, replace=True),
    )


if __name__ == "__main__":
    main()
