"""Disclosure-safe publication of a participant flow (a chain of nested counts)."""

from __future__ import annotations

import pandas as pd

from pipeline.disclosure import DisclosurePolicy, is_suppressed, publish_count


def protect_flow(flow: pd.DataFrame, policy: DisclosurePolicy) -> pd.DataFrame:
    """Publish a flow so that no small exclusion can be recovered by subtracting two steps.

    ``flow`` has columns step, label, n in order, each step a subset of the one before. A step
    whose drop from the last published step is a suppressible count is merged into the next
    step (its label joined), so every published difference is zero or at least the threshold.
    The last step (the cohort) is always published; if its drop is small, the step before is
    withheld instead. Counts go through ``publish_count``.
    """
    rows = flow.reset_index(drop=True)
    kept: list[dict] = []
    pending: list[str] = []

    def small_drop(n: int) -> bool:
        drop = kept[-1]["_n"] - n if kept else 0
        return drop > 0 and is_suppressed(drop, policy)

    last = len(rows) - 1
    for i, row in rows.iterrows():  # a flow has ~10 steps: a loop over steps, not people
        n = int(row["n"])
        if i < last and small_drop(n):
            pending.append(row["label"])
            continue
        while i == last and kept and small_drop(n):  # the cohort count is always published
            pending = [kept.pop()["label"], *pending]
        label = "; ".join([*pending, row["label"]])
        kept.append({"step": row["step"], "label": label, "_n": n})
        pending = []
    out = pd.DataFrame(kept)
    out["n"] = [publish_count(v, policy) for v in out.pop("_n")]
    return out
