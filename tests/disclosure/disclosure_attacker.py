"""An independent differencing attacker on published two-way tables (test helper).

It reads only what a reader of the report sees: the published strings, which row/column is
labelled as a total, and what the labels mean. It does not use the library's masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from pipeline.disclosure import DisclosurePolicy


@dataclass
class Knowledge:
    """What the attacker knows: exact values (NaN = unknown), bounds, and additive lines."""

    known: np.ndarray  # flat, float, NaN where suppressed
    lower: np.ndarray  # flat bounds; equal to known for published cells
    upper: np.ndarray
    lines: list[np.ndarray]  # flat indices; the last index of each line is its total


def read_published(
    published: pd.DataFrame,
    policy: DisclosurePolicy,
    use_labels: bool = True,
    truth: np.ndarray | None = None,
    total_label: str = "Total",
) -> Knowledge:
    """Parse a published table; ``truth`` replaces rounded published values (stronger attacker)."""
    text = published.to_numpy().ravel()
    n_rows, n_cols = published.shape
    is_primary = text == policy.suppressed_label
    is_secondary = text == policy.secondary_label
    hidden = is_primary | is_secondary
    known = np.array(
        [np.nan if h else float(str(t).replace(",", "")) for t, h in zip(text, hidden, strict=True)]
    )
    if truth is not None:
        known = np.where(hidden, np.nan, np.asarray(truth, dtype=float).ravel())
    lower = np.where(hidden, 0.0, known)
    upper = np.where(hidden, np.inf, known)
    if use_labels:
        lower[is_primary] = policy.smallest_suppressed
        upper[is_primary] = policy.threshold - 1
        lower[is_secondary] = policy.threshold
    grid = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    lines: list[np.ndarray] = []
    if published.columns[-1] == total_label:
        lines += [grid[i, :] for i in range(n_rows)]
    if published.index[-1] == total_label:
        lines += [grid[:, j] for j in range(n_cols)]
    return Knowledge(known, lower, upper, lines)


def subtraction_attack(k: Knowledge) -> dict[int, float]:
    """Solve every line with exactly one unknown by subtraction, repeating to a fixpoint."""
    known = k.known.copy()
    recovered: dict[int, float] = {}
    changed = True
    while changed:
        changed = False
        for line in k.lines:
            unknown = line[np.isnan(known[line])]
            if len(unknown) != 1:
                continue
            cell, interior, total = unknown[0], line[:-1], line[-1]
            if cell == total:
                value = known[interior].sum()
            else:
                value = known[total] - np.nansum(known[interior])
            known[cell] = value
            recovered[int(cell)] = float(value)
            changed = True
    return recovered


def interval_attack(k: Knowledge, max_rounds: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Tighten integer bounds line by line (total = sum of interior) until nothing changes."""
    lo, hi = k.lower.copy(), k.upper.copy()
    for _ in range(max_rounds):
        before = (lo.copy(), hi.copy())
        for line in k.lines:
            interior, total = line[:-1], line[-1]
            lo[total] = max(lo[total], lo[interior].sum())
            hi[total] = min(hi[total], hi[interior].sum())
            for m, cell in enumerate(interior):
                others = np.delete(interior, m)
                lo[cell] = max(lo[cell], lo[total] - hi[others].sum())
                hi[cell] = min(hi[cell], hi[total] - lo[others].sum())
        if np.array_equal(before[0], lo) and np.array_equal(before[1], hi):
            break
    return lo, hi


def lp_problem(k: Knowledge) -> tuple[np.ndarray, dict]:
    """Unknown cells and the linprog equality constraints/bounds over them."""
    unknown = np.flatnonzero(np.isnan(k.known))
    column = {int(u): n for n, u in enumerate(unknown)}
    a_eq, b_eq = [], []
    for line in k.lines:
        row = np.zeros(len(unknown))
        rhs = 0.0
        for position, idx in enumerate(line):
            coef = -1.0 if position == len(line) - 1 else 1.0  # interior - total = 0
            if int(idx) in column:
                row[column[int(idx)]] += coef
            else:
                rhs -= coef * k.known[idx]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    bounds = [(k.lower[u], None if np.isinf(k.upper[u]) else k.upper[u]) for u in unknown]
    problem = {
        "A_eq": np.array(a_eq) if a_eq else None,
        "b_eq": np.array(b_eq) if b_eq else None,
        "bounds": bounds,
        "method": "highs",
    }
    return unknown, problem


def lp_extreme(k: Knowledge, cell: int, maximise: bool, _cache: dict | None = None) -> float:
    """Exact smallest or largest value of one cell given all relations and bounds (LP)."""
    unknown, problem = lp_problem(k) if _cache is None else _cache
    objective = (unknown == cell).astype(float) * (-1.0 if maximise else 1.0)
    res = linprog(objective, **problem)
    if res.status == 3:  # unbounded
        return np.inf if maximise else -np.inf
    assert res.status == 0, res.message
    return -res.fun if maximise else res.fun


def lp_range(k: Knowledge, cell: int) -> tuple[float, float]:
    """Exact feasible (min, max) of one cell."""
    cache = lp_problem(k)
    return lp_extreme(k, cell, False, cache), lp_extreme(k, cell, True, cache)


def lp_pinned(k: Knowledge, cells, truth: np.ndarray) -> set[int]:
    """Cells whose value the LP attacker determines exactly (max first, min only if needed)."""
    cache = lp_problem(k)
    pinned = set()
    for cell in (int(c) for c in cells):
        high = lp_extreme(k, cell, True, cache)
        assert high >= truth[cell] - 1e-6  # sound
        if high < truth[cell] + 1 - 1e-6:
            low = lp_extreme(k, cell, False, cache)
            assert low <= truth[cell] + 1e-6
            if low > truth[cell] - 1 + 1e-6:
                pinned.add(cell)
    return pinned
