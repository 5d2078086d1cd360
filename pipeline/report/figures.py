"""Report figures (matplotlib): each returns the file it wrote; all use ``style.apply_style``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.estimates import month_days
from pipeline.disclosure import DisclosurePolicy, cut_survival_curve, publish_count
from pipeline.report.style import ARM_COLOURS, ARM_LABELS, GREY, apply_style

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
