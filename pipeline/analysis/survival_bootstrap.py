"""Bootstrap replicates of weighted Kaplan-Meier curves by arm, on a grid of whole days.

Why: a Greenwood band on weighted counts ignores the weights' estimation and is far too narrow
(REFERENCE_RESULTS, NHEFS). From one set of replicates of both arms' curves come the weighted
KM bands, the risk by each window and the restricted mean survival time (RMST) difference with
its interval, all consistent with each other.

Two resampling schemes:

* ``refit_ipw``: people are resampled and the propensity model and inverse-probability weights
  are re-estimated in every resample (weights estimated, so their uncertainty is included). The
  resampling (frequency weights from ``rng.integers``, rows in stable time order), the logistic
  MLE of each resample (``logit_replicates``: every resample of a chunk at once, the same MLE
  as Newton's method) and the stabilisation by the resample's treated share are those of
  ``pipeline.comparison.weighted_km_bootstrap``, so without trimming the replicates are the
  same (tested), and trimming is re-applied in each resample.
* ``fixed_weights``: clusters (matched sets) are resampled with their weights fixed: the
  matched-pairs bootstrap of Austin & Small (2014).

Times must be whole days (they are: differences of dates), so the RMST to ``tau`` is the sum of
S(d) for d = 0 … tau - 1 exactly (the curve is constant on [d, d + 1)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.comparison import ipw_weights
from pipeline.comparison.bootstrap import km_from_sums
from pipeline.comparison.logistic import logit_replicates, replicate_chunk
from pipeline.comparison.propensity import PropensityModel
from pipeline.comparison.weighting import Estimand
from pipeline.config import Trim
from pipeline.survival.cox_binary import arm_sums, binary_log_hr, tied_events

ARMS = ("treated", "comparison")


@dataclass(frozen=True)
class CurveBootstrap:
    """Point curves and bootstrap replicates of S(t) per arm on ``grid`` (whole days).

    ``point`` has shape (2, len(grid)) (treated, comparison); ``reps`` (B, 2, len(grid)) holds
    the successful resamples; ``n_failed`` counts resamples dropped (no fit, an empty arm).
    ``stat_point`` and ``stat_reps`` hold an optional scalar statistic (e.g. the weighted log
    hazard ratio) computed on the same resamples.
    """

    grid: np.ndarray
    point: np.ndarray
    reps: np.ndarray
    n_failed: int
    stat_point: float = np.nan
    stat_reps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def stat_se(self) -> float:
        """Bootstrap SE of the statistic (SD of its finite replicates)."""
        r = self.stat_reps[np.isfinite(self.stat_reps)]
        return float(np.std(r, ddof=1)) if len(r) > 1 else np.nan

    def at(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.grid, np.asarray(days), side="left")

    def band(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile interval of S(t), each (2, len(grid))."""
        if len(self.reps) < 2:
            nan = np.full(self.point.shape, np.nan)
            return nan, nan
        return (np.quantile(self.reps, alpha / 2, axis=0),
                np.quantile(self.reps, 1 - alpha / 2, axis=0))

    def rmst(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        """RMST to ``tau`` days per arm: point (2,) and replicates (B, 2)."""
        if tau > self.grid[-1] + 1:
            raise ValueError("tau beyond the grid")
        return self.point[:, :tau].sum(axis=1), self.reps[:, :, :tau].sum(axis=2)

    def rmst_difference(self, tau: int, alpha: float = 0.05) -> dict[str, float]:
        """Treated minus comparison RMST to ``tau``: percentile CI, p from the bootstrap SE."""
        point, reps = self.rmst(tau)
        diff = float(point[0] - point[1])
        d = reps[:, 0] - reps[:, 1]
        if len(d) < 2:
            return {"diff": diff, "se": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan,
                    "rmst_1": float(point[0]), "rmst_0": float(point[1])}
        se = float(np.std(d, ddof=1))
        return {"diff": diff, "se": se, "lower": float(np.quantile(d, alpha / 2)),
                "upper": float(np.quantile(d, 1 - alpha / 2)),
                "p": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else np.nan,
                "rmst_1": float(point[0]), "rmst_0": float(point[1])}


def arm_curves(time: np.ndarray, event: np.ndarray, treated: np.ndarray, weights: np.ndarray,
               grid: np.ndarray, codes: tuple[np.ndarray, np.ndarray] | None = None
               ) -> np.ndarray:
    """Weighted KM survival of both arms at ``grid``: shape (2, len(grid)). ``codes``:
    ``np.unique(time, return_inverse=True)``, computed once when called per resample."""
    uniq, code = np.unique(time, return_inverse=True) if codes is None else codes
    exits, events = arm_sums(code, uniq.size, np.asarray(treated).astype(bool),
                             np.asarray(event), weights)
    return curves_from_sums(uniq, exits, events, grid)


def curves_from_sums(uniq: np.ndarray, exits: np.ndarray, events: np.ndarray,
                     grid: np.ndarray) -> np.ndarray:
    """``arm_curves`` from ``cox_binary.arm_sums`` (row 1: treated, row 0: comparison)."""
    grid = np.asarray(grid, dtype=float)
    return np.stack([km_from_sums(uniq, events[1], exits[1], grid),
                     km_from_sums(uniq, events[0], exits[0], grid)])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[np.argsort(frame["time_days"].to_numpy(float), kind="stable")]


def fixed_weights(frame: pd.DataFrame, grid: np.ndarray, n_boot: int, seed: int,
                  weights_col: str | None = None, cluster_col: str | None = None
                  ) -> CurveBootstrap:
    """Resample clusters (default: rows) with replacement, weights held fixed."""
    frame = _sorted(frame)
    time = frame["time_days"].to_numpy(float)
    event = frame["event"].to_numpy(bool)
    t = frame["treated"].to_numpy(bool)
    w = np.ones(len(frame)) if weights_col is None else frame[weights_col].to_numpy(float)
    codes = (np.arange(len(frame)) if cluster_col is None
             else pd.factorize(frame[cluster_col])[0])
    n_cl = int(codes.max()) + 1 if len(codes) else 0
    codes_t = np.unique(time, return_inverse=True)
    point = arm_curves(time, event, t, w, grid, codes_t)
    rng = np.random.default_rng(seed)
    reps, failed = [], 0
    for _ in range(n_boot):
        f = np.bincount(rng.integers(0, n_cl, n_cl), minlength=n_cl)[codes].astype(float)
        ww = w * f
        if ww[t].sum() <= 0 or ww[~t].sum() <= 0:
            failed += 1
            continue
        reps.append(arm_curves(time, event, t, ww, grid, codes_t))
    return CurveBootstrap(grid, point, _stack(reps, grid), failed)


def refit_ipw(frame: pd.DataFrame, design: Callable[[pd.DataFrame], np.ndarray],
              model: PropensityModel, grid: np.ndarray, n_boot: int, seed: int,
              estimand: Estimand = "ATT", trim: Trim = None,
              log_hr: bool = False) -> CurveBootstrap:
    """Resample people; re-fit the score (from ``model``'s coefficients) and re-weight each time.

    ``design(frame)`` returns the score's design matrix (``model.spec.matrix`` of the numeric
    covariates); weights are stabilised; trimming (``keep_mask``) is re-applied per resample.
    With ``log_hr`` the weighted Cox log hazard ratio of treatment (Efron ties, weights = IP
    weight x times drawn) is estimated on every resample too (``stat_point``, ``stat_reps``),
    from the same per-time sums as the resample's curves (``cox_binary``).
    """
    from pipeline.analysis.propensity_scores import expit, keep_mask

    frame = _sorted(frame)
    time = frame["time_days"].to_numpy(float)
    event = frame["event"].to_numpy(bool)
    t = frame["treated"].to_numpy(bool)
    X = design(frame)
    y = t.astype(float)
    beta0 = model.params.to_numpy()

    def weights(ps: np.ndarray, f: np.ndarray) -> np.ndarray | None:
        pos = f > 0
        keep = np.zeros(len(ps), dtype=bool)
        keep[pos] = keep_mask(ps[pos], t[pos], trim)
        ft = f * keep
        if not 0 < np.sum(ft * t) < np.sum(ft):
            return None
        w = np.zeros(len(ps))
        w[keep] = ipw_weights(ps[keep], t[keep], estimand, True,
                              p_treated=float(np.sum(ft * t) / np.sum(ft)))
        return w * f

    uniq, code = np.unique(time, return_inverse=True)

    def curves_and_sums(w: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The resample's curves and the per-time sums its Cox log HR is fitted from."""
        exits, events = arm_sums(code, uniq.size, t, event, w)
        tied = tied_events(code, uniq.size, event, w) if log_hr else None
        return curves_from_sums(uniq, exits, events, grid), (exits, events, tied)

    point_w = weights(expit(X @ beta0), np.ones(len(frame)))
    if point_w is None:
        raise ValueError("an arm is empty after trimming")
    point, point_sums = curves_and_sums(point_w)
    rng = np.random.default_rng(seed)
    n = len(frame)
    reps, sums, failed = [], [], 0
    left = n_boot
    while left > 0:  # resamples drawn in order, their scores fitted a chunk at a time
        size = replicate_chunk(n, left)
        left -= size
        draws = np.stack([np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
                          for _ in range(size)])
        usable = np.array([0 < np.sum(f * y) < np.sum(f) for f in draws])
        failed += int((~usable).sum())
        betas, ok = logit_replicates(X, y, draws[usable], beta0)
        for f, beta, fitted in zip(draws[usable], betas, ok, strict=True):
            ps = expit(X @ beta)
            if not fitted or np.any((ps[f > 0] < 1e-12) | (ps[f > 0] > 1 - 1e-12)):
                failed += 1
                continue
            ww = weights(ps, f)
            if ww is None:
                failed += 1
                continue
            curve, rep_sums = curves_and_sums(ww)
            reps.append(curve)
            if log_hr:
                sums.append(rep_sums)
    stat_point, stat_reps = np.nan, np.zeros(0)
    if log_hr:
        stat_point = float(binary_log_hr(*(s[None] for s in point_sums))[0])
        stat_reps = (binary_log_hr(*(np.stack(p) for p in zip(*sums, strict=True)))
                     if sums else np.zeros(0))
    return CurveBootstrap(grid, point, _stack(reps, grid), failed, stat_point, stat_reps)


def _stack(reps: list[np.ndarray], grid: np.ndarray) -> np.ndarray:
    return np.stack(reps) if reps else np.zeros((0, 2, len(grid)))


def curve_table(boot: CurveBootstrap, days: list[int], n_risk: dict[str, np.ndarray],
                alpha: float = 0.05) -> pd.DataFrame:
    """Long table (arm, time, surv, lower, upper, n_risk) at ``days`` from the replicates;
    ``n_risk`` gives the unweighted number at risk per arm at those days."""
    lo, hi = boot.band(alpha)
    idx = boot.at(days)
    parts = [pd.DataFrame({"arm": arm, "time": days, "surv": boot.point[i, idx],
                           "lower": lo[i, idx], "upper": hi[i, idx],
                           "n_risk": n_risk[arm]}) for i, arm in enumerate(ARMS)]
    return pd.concat(parts, ignore_index=True)
