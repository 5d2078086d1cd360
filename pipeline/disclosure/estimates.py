"""Disclosure control for model outputs: survival curves and subgroup estimates.

Known limits: cutting a Kaplan-Meier curve where fewer than ``threshold`` remain at risk does
not hide small numbers of events per step (a step's size times the number at risk gives the
events at that time), nor small drops between published numbers at risk. Publish curves on a
coarse time grid if single events must not be visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.disclosure.policy import DisclosurePolicy


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise a clear KeyError naming any missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"missing column(s) {missing}; available: {list(frame.columns)}")


def cut_survival_curve(
    km: pd.DataFrame,
    policy: DisclosurePolicy,
    n_risk_col: str = "n_risk",
    time_col: str | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Drop every row from the first time fewer than ``threshold`` remain at risk (per group).

    Time is ``time_col`` (the index when None); rows keep their input order. Later rows are
    dropped even if the number at risk rises again (late entry).
    """
    _require_columns(km, [n_risk_col] + [c for c in (time_col, by) if c is not None])
    if km[n_risk_col].isna().any():
        raise ValueError(f"{n_risk_col!r} has missing values")
    times = km.index.to_numpy() if time_col is None else km[time_col].to_numpy()
    in_time_order = pd.Series(times).sort_values(kind="stable").index.to_numpy()
    safe = pd.Series(km[n_risk_col].to_numpy()[in_time_order] >= policy.threshold)
    if by is None:
        keep_sorted = safe.cummin()
    else:
        keep_sorted = safe.groupby(
            km[by].to_numpy()[in_time_order], sort=False, dropna=False
        ).cummin()
    keep = np.empty(len(km), dtype=bool)
    keep[in_time_order] = keep_sorted.to_numpy()
    return km[keep]


def withhold_small_estimates(
    estimates: pd.DataFrame,
    events_col: str,
    policy: DisclosurePolicy,
    estimate_cols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Blank estimates from fewer than ``min_events_for_estimate`` events, giving the reason.

    ``estimate_cols`` defaults to every floating-point column (estimates, CIs, p-values);
    integer columns are counts and are left for ``publish_count``.
    """
    _require_columns(estimates, [events_col])
    if estimate_cols is None:
        estimate_cols = [
            c
            for c in estimates.columns
            if c != events_col and pd.api.types.is_float_dtype(estimates[c])
        ]
    else:
        _require_columns(estimates, estimate_cols)
        if events_col in estimate_cols:
            raise ValueError(f"{events_col!r} is the events column, not an estimate column")
    events = pd.to_numeric(estimates[events_col], errors="raise")
    too_few = events < policy.min_events_for_estimate
    missing = events.isna()
    out = estimates.copy()
    out.loc[too_few | missing, list(estimate_cols)] = np.nan
    reason = np.where(
        missing,
        "event count missing",
        np.where(too_few, f"fewer than {policy.min_events_for_estimate} events", None),
    )
    out["withheld_reason"] = pd.Series(reason, index=out.index, dtype=object)
    return out
