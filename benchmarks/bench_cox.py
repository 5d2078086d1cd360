"""Benchmark: pipeline.survival.fit_cox with robust SEs vs lifelines' robust CoxPHFitter.

Run: .venv/bin/python benchmarks/bench_cox.py [--sizes 10000 100000 1000000] [--lifelines-max N]
Continuous event times (no ties), 7 covariates, ~55% events. Prints median wall time.
lifelines' robust variance is O(n^2): by default it is only timed at n <= 10,000.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from pipeline.survival import fit_cox

P = 7


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    """Exponential PH data with continuous times and random censoring."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, P))
    beta = np.linspace(-0.5, 0.5, P)
    event_time = rng.exponential(1.0 / np.exp(x @ beta))
    censor_time = rng.exponential(1.5, n)
    df = pd.DataFrame(x, columns=[f"x{k}" for k in range(P)])
    df["t"] = np.minimum(event_time, censor_time)
    df["e"] = (event_time <= censor_time).astype(int)
    return df


def timed(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--lifelines-max", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cols = [f"x{k}" for k in range(P)]
    rows = []
    for n in args.sizes:
        df = simulate(n)
        reps = args.repeats if n <= 100_000 else 1
        ours = timed(lambda df=df: fit_cox(df, "t", "e", cols, robust=True), reps)
        no_c = timed(
            lambda df=df: fit_cox(df, "t", "e", cols, robust=True, compute_concordance=False),
            reps,
        )
        ll = np.nan
        if n <= args.lifelines_max:
            from lifelines import CoxPHFitter

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ll = timed(
                    lambda df=df: CoxPHFitter().fit(df[[*cols, "t", "e"]], "t", "e", robust=True),
                    1,
                )
        rows.append((n, ours, no_c, ll))
    header = ("n", "fit_cox robust", "w/o concordance", "lifelines robust")
    print(f"{header[0]:>10} | {header[1]:>15} | {header[2]:>17} | {header[3]:>16}")
    print("-" * 68)
    for n, ours, no_c, ll in rows:
        ll_txt = "not run" if np.isnan(ll) else f"{ll:.2f} s"
        print(f"{n:>10,} | {ours:>13.2f} s | {no_c:>15.2f} s | {ll_txt:>16}")


if __name__ == "__main__":
    main()
