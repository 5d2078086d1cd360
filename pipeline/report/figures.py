"""Report figures (matplotlib): each returns the file it wrote; all use ``style.apply_style``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.estimates import month_days
from pipeline.disclosure import DisclosurePolicy, cut_survival_curve, publish_count
from pipeline.report.style import ARM_COLOURS, ARM_LABELS, GREY, apply_style
from pipeline.report.wording import covariate_label

DAYS_PER_MONTH = 365.25 / 12


def km_figure(km: pd.DataFrame, at_risk: pd.DataFrame, policy: DisclosurePolicy, path: Path,
              max_months: int = 36) -> Path:
    """Share not yet reoffended over time by arm, 95% log-log bands, numbers at risk below.

    Curves stop where fewer than the disclosure threshold remain at risk.
    """
    import matplotlib.pyplot as plt

    apply_style()
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(6.4, 4.4), height_ratios=(4, 1.1),
                                  sharex=True)
    for arm in ("treated", "comparison"):
        curve = km[km["arm"] == arm]
        curve = cut_survival_curve(curve, policy, time_col="time")
        curve = curve[curve["time"] <= max_months * DAYS_PER_MONTH]
        if curve.empty:
            continue
        months = curve["time"].to_numpy() / DAYS_PER_MONTH
        colour = ARM_COLOURS[arm]
        ax.step(months, curve["surv"], where="post", color=colour, lw=1.8, label=ARM_LABELS[arm])
        ax.fill_between(months, curve["lower"], curve["upper"], step="post", color=colour,
                        alpha=0.18, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Share not yet reoffended")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(loc="lower left")
    ticks = np.arange(0, max_months + 1, 6)
    ax.set_xlim(-1.5, max_months + 1.5)  # room for the numbers at risk at 0 and the end
    tab.set_xticks(ticks)
    tab.set_xlabel("Months since index date")
    tab.set_yticks([0, 1], labels=["Comparison", "Treated"])
    tab.set_ylim(-0.6, 1.6)
    tab.grid(False)
    for spine in tab.spines.values():
        spine.set_visible(False)
    tab.tick_params(axis="y", length=0)
    tab.set_title("Numbers at risk", loc="left", fontsize=8, color=GREY)
    for row, arm in ((1, "treated"), (0, "comparison")):
        for m in ticks:
            n = int(at_risk.loc[arm, month_days(int(m))])
            tab.text(m, row, publish_count(n, policy), ha="center", va="center", fontsize=8,
                     color=ARM_COLOURS[arm])
    fig.align_ylabels()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def love_plot(balance: pd.DataFrame, path: Path, threshold: float = 0.1) -> Path:
    """Absolute standardised mean difference per covariate before and after adjustment."""
    import matplotlib.pyplot as plt

    apply_style()
    methods = [m for m in ("before", "weighted_risk_sets", "matched")
               if m in set(balance["method"])]
    labels = {"before": "Before adjustment",
              "weighted_risk_sets": "Main analysis (weighted)",
              "matched": "Matched (sensitivity analysis)"}
    markers = {"before": ("o", GREY), "weighted_risk_sets": ("s", "#009E73"),
               "matched": ("D", ARM_COLOURS["treated"])}
    before = balance[balance["method"] == "before"].set_index("covariate")["smd"].abs()
    order = before.sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=(6.4, 0.24 * len(order) + 1.2))
    y = np.arange(len(order))
    for method in methods:
        vals = balance[balance["method"] == method].set_index("covariate")["smd"].abs()
        marker, colour = markers[method]
        ax.scatter(vals.reindex(order), y, marker=marker, color=colour, s=22,
                   label=labels[method], zorder=3)
    ax.axvline(threshold, color="#999999", ls="--", lw=1)
    ax.set_yticks(y, labels=[covariate_label(c) for c in order])
    ax.set_xlabel("|Standardised mean difference|, treated vs comparison")
    ax.set_xlim(left=0)
    # below the plot: inside the axis the legend hid points of the last characteristics
    fig.legend(loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def overlap_figure(propensity: pd.DataFrame, path: Path) -> Path:
    """Smoothed distribution of the propensity score by group (no counts are drawn)."""
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    apply_style()
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    grid = np.linspace(0, 1, 201)
    for arm in ("treated", "comparison"):
        ps = propensity.loc[propensity["arm"] == arm, "ps"].to_numpy()
        if len(ps) < 2 or np.ptp(ps) == 0:
            continue
        density = gaussian_kde(ps)(grid)
        ax.plot(grid, density, color=ARM_COLOURS[arm], lw=1.6, label=ARM_LABELS[arm])
        ax.fill_between(grid, density, color=ARM_COLOURS[arm], alpha=0.15, lw=0)
    ax.set_xlabel("Estimated probability of starting treatment (propensity score)")
    ax.set_ylabel("Density")
    ax.set_xlim(0, 1)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def forest_plot(rows: pd.DataFrame, path: Path, xlabel: str = "Hazard ratio (log scale)"
                ) -> Path:
    """Point estimates and 95% CIs (columns label, estimate, lower, upper, group) on a log axis.

    Rows with a missing estimate (withheld) are listed with the word 'withheld'.
    """
    import matplotlib.pyplot as plt

    apply_style()
    rows = rows.reset_index(drop=True)
    n = len(rows)
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * n + 1.0))
    y = np.arange(n)[::-1]
    shown = rows["estimate"].notna()
    ax.errorbar(rows.loc[shown, "estimate"], y[shown.to_numpy()],
                xerr=[rows.loc[shown, "estimate"] - rows.loc[shown, "lower"],
                      rows.loc[shown, "upper"] - rows.loc[shown, "estimate"]],
                fmt="o", color=ARM_COLOURS["treated"], ecolor=GREY, elinewidth=1.2,
                capsize=2, ms=4)
    ax.axvline(1, color="#999999", lw=1)
    ax.set_xscale("log")
    finite = rows.loc[shown, ["lower", "upper"]].to_numpy()
    lo = max(0.1, np.nanmin(finite) * 0.8) if finite.size else 0.25
    hi = min(10, np.nanmax(finite) * 1.25) if finite.size else 4
    ax.set_xlim(min(lo, 0.5), max(hi, 2))
    ax.set_xticks([t for t in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4) if lo * 0.8 <= t <= hi * 1.2])
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_formatter(lambda v, _: "")
    ax.set_yticks(y, labels=rows["label"])
    left = min(lo, 0.5)
    for yi, withheld in zip(y, ~shown, strict=True):
        if withheld:
            ax.text(left * 1.05, yi, "withheld: too few events", va="center", ha="left",
                    fontsize=7, color=GREY,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    if "group" in rows.columns:  # a rule between groups of rows (e.g. analyses | subgroups)
        change = np.flatnonzero(rows["group"].to_numpy()[1:] != rows["group"].to_numpy()[:-1])
        for i in change:
            ax.axhline(y[i] - 0.5, color="#bbbbbb", lw=0.8)
    ax.set_xlabel(xlabel + "\n← favours treatment        favours comparison →", fontsize=8)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
