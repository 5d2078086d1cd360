"""Subgroup levels and dose bands are published with their totals as one protected table: no
suppressed level can be recovered by subtraction (issue 12's attack)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.survival_results import ESTIMATE_COLUMNS
from pipeline.disclosure import DisclosurePolicy
from pipeline.report.linked_counts import COUNT_COLUMNS, linked_counts

POLICY = DisclosurePolicy()


def rows(family: str, levels: dict[str, int], measure: str = "hr") -> list[dict]:
    out = [{"analysis": f"{family}={lv}", "measure": measure, "arm": "", "estimate": 0.8,
            "n_treated": n, "n_comparison": n, "events_treated": 10, "events_comparison": 12}
           for lv, n in levels.items()]
    total = sum(levels.values())
    out.append({"analysis": family, "measure": "interaction_p", "arm": "", "estimate": 1.0,
                "n_treated": total, "n_comparison": total, "events_treated": 10 * len(levels),
                "events_comparison": 12 * len(levels)})
    return out


def frame(*parts: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([r for p in parts for r in p]).reindex(columns=ESTIMATE_COLUMNS)


def value(text: str) -> int | None:
    return None if text in (POLICY.suppressed_label, POLICY.secondary_label) else int(
        text.replace(",", ""))


def test_one_small_level_cannot_be_recovered_from_the_total():
    est = frame(rows("subgroup:risk_rating", {"low": 12, "moderate": 10, "high": 9}))
    out = linked_counts(est, POLICY)
    n = [value(t) for t in out["n_treated"]]
    assert n[2] is None                      # the small level is hidden …
    hidden = [i for i in range(3) if n[i] is None]
    assert len(hidden) >= 2                  # … and so is another one, so 31 − 12 ≠ high
    total = value(out["n_treated"].iloc[3])
    if total is not None:
        visible = sum(v for v in n if v is not None)
        assert total - visible != 9


def test_dose_bands_with_the_total():
    est = frame(rows("dose:sessions", {"1-9": 2, "10-15": 1, "16+": 11}))
    out = linked_counts(est, POLICY)
    n = [value(t) for t in out["n_treated"][:3]]
    total = value(out["n_treated"].iloc[3])
    # each hidden band must not be pinned down: the published total minus the published bands
    # must not equal any single hidden band
    assert n[0] is None and n[1] is None
    if total is not None and n[2] is not None:
        assert total - n[2] != 2 and total - n[2] != 1 or sum(x is None for x in n) > 1


def test_rows_outside_families_are_published_one_by_one():
    est = frame([{"analysis": "matched", "measure": "hr", "arm": "", "estimate": 0.7,
                  "n_treated": 176, "n_comparison": 5, "events_treated": 40,
                  "events_comparison": 30}])
    out = linked_counts(est, POLICY)
    assert list(out.iloc[0]) == ["176", "<10", "40", "30"]


def test_random_small_families_never_leak_a_level():
    rng = np.random.default_rng(12)
    for _ in range(200):
        k = int(rng.integers(2, 6))
        sizes = {f"L{i}": int(v) for i, v in enumerate(rng.integers(1, 25, size=k))}
        out = linked_counts(frame(rows("subgroup:x", sizes)), POLICY)
        for col in COUNT_COLUMNS[:2]:
            shown = [value(t) for t in out[col][:k]]
            total = value(out[col].iloc[k])
            hidden = [i for i, v in enumerate(shown) if v is None]
            assert len(hidden) != 1 or total is None, (sizes, list(out[col]))
