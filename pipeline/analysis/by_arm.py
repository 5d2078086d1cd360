"""Descriptive estimates by arm: Kaplan-Meier curves, numbers at risk, fixed-window proportions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.survival import kaplan_meier

ARMS = ("treated", "comparison")


def km_by_arm(frame: pd.DataFrame, conf_type: str = "log-log") -> pd.DataFrame:
    """Kaplan-Meier of time to first reoffence for each arm (long format, column ``arm``)."""
    parts = []
    for arm in ARMS:
        sub = frame[frame["arm"] == arm]
        if len(sub):
            parts.append(kaplan_meier(sub["time_days"], sub["event"], conf_type=conf_type)
                         .assign(arm=arm))
    return pd.concat(parts, ignore_index=True)


def wilson_interval(events: np.ndarray, n: np.ndarray, conf_level: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (good coverage at small n)."""
    z = stats.norm.ppf(0.5 + conf_level / 2)
    events = np.asarray(events, float)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = events / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def window_proportions(frame: pd.DataFrame, months: tuple[int, ...]) -> pd.DataFrame:
    """Share reoffending within each window, among people with full follow-up, per arm."""
    rows = []
    for m in months:
        full = frame[frame[f"full_{m}m"].astype(bool)]
        for arm in ARMS:
            sub = full[full["arm"] == arm]
            n, ev = len(sub), int(sub[f"event_{m}m"].astype(bool).sum())
            offences = int(sub[f"n_offences_{m}m"].sum())
            rows.append({"months": m, "arm": arm, "n": n, "events": ev, "offences": offences})
    out = pd.DataFrame(rows)
    out["proportion"] = out["events"] / out["n"].where(out["n"] > 0)
    out["lower"], out["upper"] = wilson_interval(out["events"], out["n"])
    out["offences_per_100"] = 100 * out["offences"] / out["n"].where(out["n"] > 0)
    return out
