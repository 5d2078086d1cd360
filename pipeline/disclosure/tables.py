"""Two-way count tables with margins: primary and secondary (complementary) suppression.

Algorithm (``protect_table``)
-----------------------------
1. Augment the R x C table with a total column (if C > 1) and a total row (if R > 1); a total
   that would merely repeat a single row/column is not added, so an R x 1 flow table gets one
   total row and a 1 x 1 table gets none. Each augmented row is then an additive line (cells sum
   to its total) when a total column exists, and each augmented column likewise.
2. Primary suppression: every cell, totals included, with a count in 1..threshold-1 (and 0
   when ``suppress_zeros``).
3. Line rule: while some line holds exactly one suppressed cell (which subtraction from the
   line would reveal), suppress a complement in the first such line (rows top-down, then
   columns left-right): the unsuppressed non-zero cell with the smallest count; ties go to an
   interior cell before a total, then the top-most row, then the left-most column. Zeros are
   never complements: one is never needed, and a suppressed zero pins its partners' bounds.
4. Audit: the attacker is assumed to know every published count (unrounded), every additive
   relation, non-negativity and the label bounds (primary in [0 or 1, threshold-1],
   complementary >= threshold). A 2-way table with margins is a network (bipartite graph of
   lines, one edge per suppressed cell), so a primary cell can take another value iff it lies
   on a cycle of the residual graph of unit moves that respect the bounds; this equals the
   exact LP bounds. For the first primary cell whose value is pinned, suppress the smallest
   unsuppressed non-zero cell of its row or column (same tie-break) and go back to step 3.

The choice is deterministic and greedy (small counts first), not optimal in information loss.
Known limits: it protects one table and its own margins only. Tables that share margins or
cells (the same total in another table, nested flow stages, the same counts by another
breakdown, earlier releases) can still be differenced against each other; coordinate them by
publishing consistent totals and checking the ``suppressed`` masks together. The guarantee is
"no exact recovery": an attacker may still narrow a suppressed cell to a short interval, and
one who knows this deterministic rule may bound a complement by the cells published beside it.
If even full suppression leaves a primary cell exact (nine non-zero cells under a grand total
"<10"), ``protect_table`` raises instead of publishing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.disclosure.counts import round_to_base, suppression_mask
from pipeline.disclosure.policy import DisclosurePolicy


@dataclass(frozen=True)
class ProtectedTable:
    """Result of :func:`protect_table`; all frames share the augmented (with totals) shape.

    ``published`` holds the strings to print, ``values`` the publishable numbers (rounded,
    NaN where suppressed), ``suppressed``/``primary`` the boolean masks.
    """

    published: pd.DataFrame
    values: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame

    @property
    def secondary(self) -> pd.DataFrame:
        """Cells suppressed only to protect others (complementary suppression)."""
        return self.suppressed & ~self.primary


@dataclass(frozen=True)
class _Layout:
    """Which lines of the augmented table are additive (have a total)."""

    row_lines: bool  # a total column exists: every augmented row sums to its last cell
    col_lines: bool  # a total row exists: every augmented column sums to its last cell


def _validated_counts(table: pd.DataFrame, total_label: str) -> np.ndarray:
    """Return the table as an int64 array, or raise if it is not non-negative integer counts."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ValueError("table is empty")
    if isinstance(table.index, pd.MultiIndex) or isinstance(table.columns, pd.MultiIndex):
        raise ValueError("table must have a flat index and columns; flatten the MultiIndex first")
    if total_label in table.index or total_label in table.columns:
        raise ValueError(f"table already contains {total_label!r}; pass it without totals")
    bad = [
        c
        for c, t in table.dtypes.items()
        if pd.api.types.is_bool_dtype(t) or not pd.api.types.is_numeric_dtype(t)
    ]
    if bad:
        raise TypeError(f"table columns must hold numeric counts; not numeric: {bad}")
    arr = table.to_numpy(dtype=float)
    if not np.isfinite(arr).all():
        raise ValueError("table contains missing or infinite values; fill structural zeros first")
    if (arr < 0).any() or (arr != np.round(arr)).any():
        raise ValueError("table must contain non-negative integer counts")
    return arr.astype(np.int64)


def _augment(counts: np.ndarray, margins: bool) -> tuple[np.ndarray, _Layout]:
    """Append the total column/row that carry information (see module docstring, step 1)."""
    n_rows, n_cols = counts.shape
    layout = _Layout(row_lines=margins and n_cols > 1, col_lines=margins and n_rows > 1)
    aug = counts
    if layout.row_lines:
        aug = np.column_stack([aug, aug.sum(axis=1)])
    if layout.col_lines:
        aug = np.vstack([aug, aug.sum(axis=0)])
    return aug, layout


def _margin_mask(shape: tuple[int, int], layout: _Layout) -> np.ndarray:
    """Boolean mask of total cells in the augmented table."""
    mask = np.zeros(shape, dtype=bool)
    if layout.row_lines:
        mask[:, -1] = True
    if layout.col_lines:
        mask[-1, :] = True
    return mask


def _pick(candidates: np.ndarray, aug: np.ndarray, is_margin: np.ndarray) -> tuple[int, int]:
    """Deterministic complement: smallest count, then interior before total, then row, column."""
    rows, cols = np.nonzero(candidates)
    order = np.lexsort((cols, rows, is_margin[rows, cols], aug[rows, cols]))
    return int(rows[order[0]]), int(cols[order[0]])


def _close_lines(aug: np.ndarray, sup: np.ndarray, layout: _Layout, is_margin: np.ndarray) -> None:
    """Step 3: add complements in place until no additive line has exactly one suppressed cell."""
    while True:
        open_rows = np.flatnonzero(sup.sum(axis=1) == 1) if layout.row_lines else []
        open_cols = np.flatnonzero(sup.sum(axis=0) == 1) if layout.col_lines else []
        line = np.zeros_like(sup)
        if len(open_rows):
            line[open_rows[0], :] = True
        elif len(open_cols):
            line[:, open_cols[0]] = True
        else:
            return
        candidates = line & ~sup & (aug > 0)
        if not candidates.any():  # impossible for consistent margins; guard against misuse
            raise RuntimeError("no complementary cell available in a line with one suppression")
        sup[_pick(candidates, aug, is_margin)] = True


def _pinned_primaries(
    aug: np.ndarray,
    sup: np.ndarray,
    primary: np.ndarray,
    layout: _Layout,
    policy: DisclosurePolicy,
) -> list[tuple[int, int]]:
    """Step 4: primary cells whose exact value follows from published counts and label bounds."""
    if not (layout.row_lines or layout.col_lines):
        return []
    n_rows, n_cols = aug.shape
    row_sign = np.ones(n_rows, dtype=np.int64)
    col_sign = np.ones(n_cols, dtype=np.int64)
    if layout.col_lines:
        row_sign[-1] = -1
    if layout.row_lines:
        col_sign[-1] = -1
    free_row, col_base = n_rows, n_rows + 1  # a row that is no line maps to one free node
    free_col = col_base + n_cols

    rows, cols = np.nonzero(sup)
    vals = aug[rows, cols]
    is_primary = primary[rows, cols]
    lower = np.where(is_primary, policy.smallest_suppressed, policy.threshold)
    upper = np.where(is_primary, policy.threshold - 1, np.iinfo(np.int64).max)
    sign = row_sign[rows] * col_sign[cols]  # +1 step along an edge moves the cell by `sign`
    u = rows if layout.row_lines else np.full_like(rows, free_row)
    v = cols + col_base if layout.col_lines else np.full_like(cols, free_col)
    fwd = (vals + sign >= lower) & (vals + sign <= upper)
    bwd = (vals - sign >= lower) & (vals - sign <= upper)

    adjacency: dict[int, list[tuple[int, int]]] = {}
    for e in range(len(rows)):
        if fwd[e]:
            adjacency.setdefault(int(u[e]), []).append((int(v[e]), e))
        if bwd[e]:
            adjacency.setdefault(int(v[e]), []).append((int(u[e]), e))

    def reachable(start: int, goal: int, skip: int) -> bool:
        seen, queue = {start}, deque([start])
        while queue:
            node = queue.popleft()
            if node == goal:
                return True
            for nxt, e in adjacency.get(node, ()):
                if e != skip and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return False

    pinned = []
    for e in np.flatnonzero(is_primary):
        movable = (fwd[e] and reachable(int(v[e]), int(u[e]), e)) or (
            bwd[e] and reachable(int(u[e]), int(v[e]), e)
        )
        if not movable:
            pinned.append((int(rows[e]), int(cols[e])))
    return pinned


def _secondary_suppression(
    aug: np.ndarray, primary: np.ndarray, layout: _Layout, policy: DisclosurePolicy
) -> np.ndarray:
    """Steps 3-4: grow the suppression mask until no primary cell can be recovered exactly."""
    is_margin = _margin_mask(aug.shape, layout)
    sup = primary.copy()
    while True:
        _close_lines(aug, sup, layout, is_margin)
        pinned = _pinned_primaries(aug, sup, primary, layout, policy)
        if not pinned:
            return sup
        i, j = pinned[0]
        open_cells = ~sup & (aug > 0)
        near = np.zeros_like(sup)
        if layout.row_lines:
            near[i, :] = True
        if layout.col_lines:
            near[:, j] = True
        candidates = open_cells & near if (open_cells & near).any() else open_cells
        if not candidates.any():
            raise RuntimeError(
                "cannot protect this table by suppression; publish it at a coarser level"
            )
        sup[_pick(candidates, aug, is_margin)] = True


def protect_table(
    table: pd.DataFrame,
    policy: DisclosurePolicy,
    margins: bool = True,
    total_label: str = "Total",
) -> ProtectedTable:
    """Add totals, then apply primary and secondary suppression and rounding to a count table.

    No primary cell can be recovered exactly from the published cells and totals (see module
    docstring); published totals are the true totals, rounded independently of the cells.
    """
    counts = _validated_counts(table, total_label)
    aug, layout = _augment(counts, margins)
    primary = suppression_mask(aug, policy)
    sup = _secondary_suppression(aug, primary, layout, policy)

    index = table.index.append(pd.Index([total_label])) if layout.col_lines else table.index
    columns = table.columns.append(pd.Index([total_label])) if layout.row_lines else table.columns
    rounded = round_to_base(aug, policy)
    text = np.array([f"{v:,}" for v in rounded.ravel()], dtype=object).reshape(aug.shape)
    text = np.where(primary, policy.suppressed_label, text)
    text = np.where(sup & ~primary, policy.secondary_label, text)

    def frame(data: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(data, index=index, columns=columns)

    return ProtectedTable(
        published=frame(text.astype(object)),
        values=frame(np.where(sup, np.nan, rounded.astype(float))),
        suppressed=frame(sup),
        primary=frame(primary),
    )
