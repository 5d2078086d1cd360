"""The graded verdict: one written rule, in one place (docs/verdict_rule.md).

The headline rests on the pre-specified primary analysis and the sequential boundary, never on
a single 95% interval (monthly re-runs are repeated looks):

1. no primary estimate at this look                              -> ``not_estimable``
2. no look so far has crossed the boundary                       -> ``inconclusive``
3. the decision (first crossing; it stands at later looks) is a reduction:
   balance passes and every available pre-specified sensitivity analysis has HR < 1
                                                                 -> ``reduction``
   otherwise                                                     -> ``some_evidence_reduction``
4. mirror image for an increase (HR > 1)        -> ``increase`` / ``some_evidence_increase``

A sensitivity analysis that could not be estimated does not count as agreeing; if none is
available the verdict is at most "some evidence". Every verdict other than inconclusive needs a
boundary crossing, so under no effect the chance that any look prints one is at most the
plan's alpha (docs/sequential_simulation.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = ("reduction", "some_evidence_reduction", "inconclusive", "some_evidence_increase",
            "increase", "not_estimable")


@dataclass(frozen=True)
class Evidence:
    """What the rule looks at, all from the current look."""

    estimable: bool            # the primary hazard ratio was estimated at this look
    decision: str              # "" (no crossing so far), "reduction" or "increase"
    balanced: bool             # every |SMD| within the threshold in the primary analysis
    sensitivity_hrs: tuple[float | None, ...]  # point HRs of the pre-specified analyses


def agree(direction: str, hrs: tuple[float | None, ...]) -> bool:
    """Every sensitivity estimate exists and points the same way as ``direction``."""
    if not hrs:
        return False
    ok = [h is not None and math.isfinite(h) and h > 0 for h in hrs]
    if not all(ok):
        return False
    return all((h < 1) if direction == "reduction" else (h > 1) for h in hrs)


def grade(ev: Evidence) -> str:
    """The verdict code for the evidence (see the module docstring)."""
    if not ev.estimable:
        return "not_estimable"
    if ev.decision not in ("reduction", "increase"):
        return "inconclusive"
    clear = ev.balanced and agree(ev.decision, ev.sensitivity_hrs)
    return ev.decision if clear else f"some_evidence_{ev.decision}"


def reasons(ev: Evidence) -> list[str]:
    """Why a crossing was graded 'some evidence' rather than clear (empty otherwise)."""
    if grade(ev) not in ("some_evidence_reduction", "some_evidence_increase"):
        return []
    out = []
    if not ev.balanced:
        out.append("some measured characteristics remain imbalanced after matching")
    if not agree(ev.decision, ev.sensitivity_hrs):
        out.append("not every pre-specified sensitivity analysis points the same way")
    return out
