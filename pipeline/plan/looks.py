"""Sequential monitoring over the looks so far: information, boundary, repeated CI, crossing.

Input: one record per look in extraction order (events and the primary hazard ratio with its
95% CI, or a missing estimate). Output, per look: the information fraction, the two-sided Z
boundary, the hazard ratios at which it is crossed, the repeated (group sequential) confidence
interval (Jennison & Turnbull 2000, ch. 9: the estimate +- boundary x SE, which covers the
true value at every look simultaneously with probability 1 - alpha), and the sequential state:

* a look adds information only when its fraction exceeds every earlier one; a look with no new
  information reuses the last boundary (it spends nothing);
* the first look that reaches the planned events is the final analysis; error left over is
  spent there, and later looks are descriptive (``after_final``, no boundary);
* once a look has crossed, the decision stands (``decided_at``): later looks carry it.

Pure functions of the inputs: the same looks give the same table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.plan.spec import AnalysisPlan
from pipeline.plan.spending import boundaries

Z975 = stats.norm.isf(0.025)


def se_from_ci(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """SE of the log HR behind a symmetric 95% Wald interval."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(upper) - np.log(lower)) / (2 * Z975)


def sequential_table(events: np.ndarray, estimate: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, plan: AnalysisPlan) -> pd.DataFrame:
    """One row per look (same order as the inputs); see the module docstring."""
    events = np.asarray(events, dtype=float)
    est, lo, hi = (np.asarray(a, dtype=float) for a in (estimate, lower, upper))
    n = len(events)
    se = se_from_ci(lo, hi)
    ok = np.isfinite(est) & (est > 0) & np.isfinite(se) & (se > 0) & (events > 0)
    log_hr = np.where(ok, np.log(np.where(ok, est, 1.0)), np.nan)
    z = np.where(ok, log_hr / np.where(ok, se, 1.0), np.nan)
    t = np.minimum(events / plan.planned_events, 1.0)
    spend_t: list[float] = []
    slot = np.full(n, -1)  # index into the spending looks
    after_final = np.zeros(n, bool)
    for k in range(n):
        if spend_t and spend_t[-1] >= 1.0:
            after_final[k] = True
        elif ok[k] and (not spend_t or t[k] > spend_t[-1]):
            spend_t.append(float(t[k]))
            slot[k] = len(spend_t) - 1
        elif ok[k]:
            slot[k] = len(spend_t) - 1  # no new information: the last boundary again
    bound = np.full(n, np.nan)
    spent = np.full(n, np.nan)
    if spend_t:
        b = boundaries(np.array(spend_t), plan.alpha, plan.spending)
        has = slot >= 0
        bound[has] = b.z[slot[has]]
        spent[has] = b.alpha_spent[slot[has]]
    finite = np.isfinite(bound) & ok
    crossed = np.where(finite & (z <= -bound), "reduction",
                       np.where(finite & (z >= bound), "increase", ""))
    decided = np.full(n, "", dtype=object)
    decided_at = np.full(n, -1)
    for k in range(n):
        prev = decided_at[k - 1] if k else -1
        if prev >= 0:
            decided[k], decided_at[k] = decided[prev], prev
        elif crossed[k]:
            decided[k], decided_at[k] = crossed[k], k
    with np.errstate(invalid="ignore", over="ignore"):
        rci_lo = np.where(finite, np.exp(log_hr - bound * se), np.nan)
        rci_hi = np.where(finite, np.exp(log_hr + bound * se), np.nan)
        hr_reduction = np.where(finite, np.exp(-bound * se), np.nan)
        hr_increase = np.where(finite, np.exp(bound * se), np.nan)
    return pd.DataFrame({
        "look": np.arange(1, n + 1), "events": events, "estimable": ok,
        "information_fraction": np.where(ok, t, np.nan), "log_hr": log_hr, "se": se * ok,
        "z": z, "boundary_z": bound, "alpha_spent": spent,
        "hr_boundary_reduction": hr_reduction, "hr_boundary_increase": hr_increase,
        "rci_lower": rci_lo, "rci_upper": rci_hi, "crossed": crossed,
        "decision": decided, "decided_at_look": np.where(decided_at >= 0, decided_at + 1, 0),
        "after_final": after_final,
        "final": (slot == len(spend_t) - 1) & bool(spend_t and spend_t[-1] >= 1.0)})
