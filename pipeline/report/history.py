"""The report's sequential section: verdict at this look, history across extracts, power.

Reads the evaluation history (``pipeline.plan.store.history``: earlier looks as recorded, this
look computed now) and formats it for numbers.json under disclosure control: event counts go
through ``publish_count``; a look whose primary estimate rests on fewer events in a group than
the policy allows shows no estimate. The figure draws the estimate and its 95% interval at
every look with the hazard ratios at which the boundary is crossed.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline.config import EvaluationConfig
from pipeline.disclosure import DisclosurePolicy, publish_count
from pipeline.plan.power import detectable_hr, fixed_power, sequential_power
from pipeline.plan.store import history, plan_changes
from pipeline.report import wording as W
from pipeline.report.verdict import Evidence, reasons


def _shown(row: pd.Series, policy: DisclosurePolicy) -> bool:
    """The look's estimate may be published: estimated, enough events in each group."""
    ev = (row["events_treated"], row["events_comparison"])
    return bool(np.isfinite(row["estimate"]) and all(
        np.isfinite(e) and e >= policy.min_events_for_estimate for e in ev))


def _fmt_bound(value: float) -> str:
    return W.fmt_ratio(value) if W.is_num(value) else "none"


def history_rows(hist: pd.DataFrame, policy: DisclosurePolicy) -> list[dict]:
    """One formatted row per look (disclosure-controlled)."""
    rows = []
    for r in hist.itertuples(index=False):
        s = pd.Series(r._asdict())
        shown = _shown(s, policy)
        events = int(s["events"]) if np.isfinite(s["events"]) else 0
        rows.append({
            "extract_id": s["extract_id"], "extraction_date": str(s["extraction_date"])[:10],
            "look": int(s["look"]), "events_n": publish_count(events, policy),
            "information_percent": W.fmt_pct(s["information_fraction"], 0)
            if shown else "–",
            "hr": W.fmt_ratio(s["estimate"]) if shown else "withheld",
            "ci": f"{W.fmt_ratio(s['lower'])} to {W.fmt_ratio(s['upper'])}" if shown else "–",
            "rci": f"{W.fmt_ratio(s['rci_lower'])} to {W.fmt_ratio(s['rci_upper'])}"
            if shown and W.is_num(s["rci_lower"]) else "–",
            "boundary": (f"below {_fmt_bound(s['hr_boundary_reduction'])} or above "
                         f"{_fmt_bound(s['hr_boundary_increase'])}")
            if shown and W.is_num(s["hr_boundary_reduction"]) else "none (after the final "
            "analysis)" if bool(s["after_final"]) else "–",
            "verdict": str(s["verdict"]), "value": float(s["estimate"]) if shown else None,
            "lower": float(s["lower"]) if shown else None,
            "upper": float(s["upper"]) if shown else None,
            "bound_low": float(s["hr_boundary_reduction"])
            if shown and W.is_num(s["hr_boundary_reduction"]) else None,
            "bound_high": float(s["hr_boundary_increase"])
            if shown and W.is_num(s["hr_boundary_increase"]) else None})
    return rows


def power_section(hist: pd.DataFrame, cfg: EvaluationConfig) -> dict:
    """Power at the assumed effect now and by the planned final analysis; detectable HR."""
    plan = cfg.plan
    ok = hist[np.isfinite(hist["information_fraction"].astype(float))]
    t = np.maximum.accumulate(ok["information_fraction"].to_numpy(float)) if len(ok) else []
    t = np.unique(t[t > 0]) if len(t) else np.array([])
    events_now = float(hist["events"].iloc[-1]) if np.isfinite(hist["events"].iloc[-1]) else 0.0
    by_now = sequential_power(t, plan.assumed_hr, plan.planned_events, plan.alpha,
                              plan.spending) if len(t) else None
    t_final = np.append(t[t < 1], 1.0) if len(t) else np.array([1.0])
    at_end = sequential_power(t_final, plan.assumed_hr, plan.planned_events, plan.alpha,
                              plan.spending)
    return {"assumed_hr": W.fmt_ratio(plan.assumed_hr),
            "power_by_now": W.fmt_pct(by_now, 0) if by_now is not None else "–",
            "power_fixed_now": W.fmt_pct(fixed_power(events_now, plan.assumed_hr,
                                                     plan.alpha), 0) if events_now else "–",
            "power_final": W.fmt_pct(at_end, 0),
            "detectable_final": W.fmt_ratio(detectable_hr(plan.planned_events, plan.power,
                                                          plan.alpha, plan.planned_looks,
                                                          plan.spending)),
            "power_target": W.fmt_pct(plan.power, 0)}


def sequential_section(con: duckdb.DuckDBPyConnection, extract_id: str, cfg: EvaluationConfig,
                       policy: DisclosurePolicy) -> dict:
    """Everything the report says about the plan, the boundary and the looks so far."""
    hist = history(con, extract_id, cfg)
    cur = hist.iloc[-1]
    plan = cfg.plan
    ev = Evidence(estimable=cur["verdict"] != "not_estimable", decision=str(cur["decision"]),
                  balanced=bool(cur["balanced"]),
                  sensitivity_hrs=tuple(json.loads(cur["sensitivity_hrs"])))
    decided = int(cur["decided_at_look"])
    return {
        "verdict": str(cur["verdict"]), "why_not_clear": reasons(ev),
        "look": int(cur["look"]), "looks": len(hist),
        "events_n": publish_count(int(cur["events"]) if np.isfinite(cur["events"]) else 0,
                                  policy),
        "planned_events_n": publish_count(plan.planned_events, policy),
        "information_percent": W.fmt_pct(cur["information_fraction"], 0),
        "boundary_low": _fmt_bound(cur["hr_boundary_reduction"]),
        "boundary_high": _fmt_bound(cur["hr_boundary_increase"]),
        "boundary_p": W.fmt_p(2 * _sf(cur["boundary_z"])) if W.is_num(cur["boundary_z"])
        else "–",
        "rci": (f"{W.fmt_ratio(cur['rci_lower'])} to {W.fmt_ratio(cur['rci_upper'])}"
                if plan.repeated_ci and W.is_num(cur["rci_lower"]) else "–"),
        "crossed": str(cur["crossed"]), "decided_at_look": decided,
        "decided_at_date": str(hist["extraction_date"].iloc[decided - 1])[:10]
        if decided else "",
        "after_final": bool(cur["after_final"]), "final": bool(cur["final"]),
        "spending": plan.spending, "alpha": plan.alpha, "planned_looks": plan.planned_looks,
        "primary_analysis": plan.primary_analysis,
        "sensitivity_analyses": list(plan.sensitivity_analyses),
        "plan_sha256": plan.sha256, "plan_changes": plan_changes(hist),
        "history": history_rows(hist, policy), "power": power_section(hist, cfg)}


def _sf(z: float) -> float:
    from scipy import stats

    return float(stats.norm.sf(z))


def history_figure(rows: list[dict], path: Path) -> Path:
    """Hazard ratio and 95% CI at each look (log scale), with the boundary hazard ratios."""
    import matplotlib.pyplot as plt

    from pipeline.report.style import ARM_COLOURS, GREY, apply_style

    apply_style()
    shown = [r for r in rows if r["value"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    x = np.arange(len(rows))
    pos = [i for i, r in enumerate(rows) if r["value"] is not None]
    if shown:
        est = np.array([r["value"] for r in shown])
        err = np.array([[r["value"] - r["lower"] for r in shown],
                        [r["upper"] - r["value"] for r in shown]])
        ax.errorbar(pos, est, yerr=err, fmt="o", color=ARM_COLOURS["treated"], capsize=3,
                    label="Hazard ratio, 95% CI")
        for key in ("bound_low", "bound_high"):
            bx = [i for i, r in zip(pos, shown, strict=True) if r[key] is not None]
            by = [r[key] for r in shown if r[key] is not None]
            if bx:
                ax.plot(bx, by, ls="--", marker="_", ms=12, color=GREY, lw=1,
                        label="Boundary at that look" if key == "bound_low" else None)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    values = [v for r in shown for v in (r["lower"], r["upper"], r["bound_low"],
                                          r["bound_high"]) if v is not None]
    lo, hi = (min(values + [0.8]) / 1.1, max(values + [1.25]) * 1.1)
    ax.set_ylim(lo, hi)
    ticks = [v for v in (0.25, 0.33, 0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0, 3.0, 4.0)
             if lo <= v <= hi]
    ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
    ax.yaxis.set_minor_locator(plt.NullLocator())
    ax.set_xticks(x, [r["extraction_date"] for r in rows], rotation=30, ha="right",
                  fontsize=7)
    ax.set_ylabel("Hazard ratio (log scale)")
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7, ncols=2,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
