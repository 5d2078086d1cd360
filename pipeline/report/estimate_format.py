"""Reading and formatting estimates for the numbers document: a lookup over the tidy
estimate tables whose counts are the linked published set's, and the one formatter that turns
a row into estimate, CI and p — or "not estimable" / "withheld" with the plain-language
reason — so that the PDF prints exactly what the JSON holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.estimability import explain
from pipeline.disclosure import DisclosurePolicy, is_suppressed, publish_count
from pipeline.report import wording as W
from pipeline.report.linked_counts import PublishedSet, linked_counts, window_key


def is_number(text: str) -> bool:
    """A published count that is a number ("1,234"), not a suppression label."""
    return str(text).replace(",", "").isdigit()


class Estimates:
    """Lookup over the tidy estimates tables (survival and comparison); ``counts`` holds the
    published text of every row's counts (``linked_counts``: subgroup levels and dose bands
    protected together with their totals)."""

    def __init__(self, *frames: pd.DataFrame | None,
                 policy: DisclosurePolicy | None = None) -> None:
        parts = [f for f in frames if f is not None]
        self.frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["analysis", "measure", "arm"])
        self.counts = linked_counts(self.frame, policy) if policy is not None and len(
            self.frame) else None

    def count(self, analysis: str, measure: str, column: str, policy: DisclosurePolicy,
              arm: str = "") -> str:
        """The published text of one count of one row."""
        f = self.frame
        rows = f.index[(f["analysis"] == analysis) & (f["measure"] == measure)
                       & (f["arm"].fillna("") == arm)]
        if self.counts is not None and len(rows):
            return str(self.counts.loc[rows[0], column])
        row = self.get(analysis, measure, arm)
        return publish_count(int(row[column]), policy) if row else "–"

    def has(self, analysis: str) -> bool:
        return bool((self.frame["analysis"] == analysis).any())

    def get(self, analysis: str, measure: str, arm: str = "") -> dict | None:
        f = self.frame
        rows = f[(f["analysis"] == analysis) & (f["measure"] == measure)
                 & (f["arm"].fillna("") == arm)]
        if rows.empty:
            return None
        row = rows.iloc[0].to_dict()
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in row.items()}


def _withheld(row: dict | None, policy: DisclosurePolicy) -> bool:
    """An estimate is withheld when either arm has fewer events than the policy allows."""
    if row is None:
        return True
    if str(row.get("note") or "").startswith("withheld"):  # flagged by the analysis itself
        return True
    arms = (("n_treated", "events_treated"), ("n_comparison", "events_comparison"))
    events = [row.get(e) for n, e in arms if row.get(n)]  # arms that exist in this analysis
    return any(e is not None and e < policy.min_events_for_estimate for e in events)


NOT_ESTIMATED = {"estimate": "not estimated", "ci": "not run for this extract", "p": "–",
                 "available": False, "reason": "this analysis was not run for this extract"}


def _effect(row: dict | None, policy: DisclosurePolicy, kind: str = "ratio") -> dict:
    """Formatted estimate with CI and p; 'not estimable' with the plain-language reason when
    the analysis layer could not estimate it, 'withheld' when built on too few events."""
    if row is None:
        return dict(NOT_ESTIMATED)
    if row.get("reason") or row.get("estimate") is None:
        why = explain(row.get("reason") or "non_finite_result")
        return {"estimate": "not estimable", "ci": why, "p": "–", "available": False,
                "reason": why}
    if _withheld(row, policy):
        why = (f"there were fewer than {policy.min_events_for_estimate} reoffences in a group"
               if not str(row.get("note") or "").startswith("withheld")
               else str(row["note"]).split(";")[0].removeprefix("withheld: "))
        return {"estimate": "withheld", "ci": why, "p": "–", "available": False,
                "reason": why}
    fmt = {"ratio": W.fmt_ratio, "pp": W.fmt_pp, "months": W.fmt_months,
           "pct": W.fmt_pct}[kind]
    est, lo, hi = row["estimate"], row.get("lower"), row.get("upper")
    if kind == "months":
        ci = f"{W.fmt_months(lo)} to {W.fmt_months(hi)} months"
        return {"estimate": f"{W.fmt_months(est)} months", "ci": ci,
                "p": W.fmt_p(row.get("p")), "available": True, "value": est, "lower": lo,
                "upper": hi}
    elif kind == "pp":
        ci = f"{W.fmt_pp(lo)} to {W.fmt_pp(hi)}"
    else:
        ci = f"{fmt(lo)} to {fmt(hi)}"
    return {"estimate": fmt(est), "ci": ci, "p": W.fmt_p(row.get("p")), "available": True,
            "value": est, "lower": lo, "upper": hi}


def _proportions(props: pd.DataFrame, policy: DisclosurePolicy,
                 pub: PublishedSet | None = None) -> list[dict]:
    """Window proportions per arm; a row with nobody followed for the whole window says so
    instead of printing a share of nobody."""
    rows = []
    for r in props.sort_values(["months", "arm"], ascending=[True, False]).itertuples():
        if int(r.n) == 0:
            rows.append({"months": int(r.months), "arm": r.arm, "n": publish_count(0, policy),
                         "events_n": publish_count(0, policy), "percent": "none followed",
                         "lower": "–", "upper": "–", "per_100": "none followed",
                         "followed": False})
            continue
        def text(col: str, value: int, months=int(r.months), arm=r.arm) -> str:
            key = window_key(months, arm, col)
            return pub.result.published.get(key, publish_count(value, policy)) if pub \
                else publish_count(value, policy)

        n_text, ev_text = text("n", int(r.n)), text("events", int(r.events))
        small = is_suppressed(r.n, policy) or is_suppressed(r.events, policy) or \
            is_suppressed(r.n - r.events, policy) or not is_number(n_text) \
            or not is_number(ev_text)
        rows.append({
            "months": int(r.months), "arm": r.arm, "n": n_text, "events_n": ev_text,
            "percent": "withheld" if small else W.fmt_pct(r.proportion),
            "lower": "withheld" if small else W.fmt_pct(r.lower),
            "upper": "withheld" if small else W.fmt_pct(r.upper),
            "per_100": "withheld" if small or is_suppressed(int(r.offences), policy)
            else f"{r.offences_per_100:.1f}", "followed": True})
    return rows
