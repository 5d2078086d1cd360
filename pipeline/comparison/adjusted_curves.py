"""Doubly robust (AIPTW-AIPCW) adjusted survival curves, risk differences and RMST.

The estimator is riskRegression's `ate(..., estimator = "AIPTW")` with the full censoring
augmentation (Ozenne et al. 2020, Stat Med 39:4593; used by adjustedCurves `method = "aiptw"`),
written for the risk F_a(t) = 1 - S_a(t) of arm a:

    phi_i(t) = g_i F_a(t|X_i) + h_i [ D_i 1(T_i <= t) / G(T_i- | X_i) - F_a(t|X_i) + aug_i(t) ]
    aug_i(t) = int_0^{min(T_i, t)} (F_a(t|X_i) - F_a(u|X_i)) / (S_a(u-|X_i) G(u-|X_i)) dM^C_i(u)
    F_hat_a(t) = sum_i b_i phi_i(t) / sum_i b_i g_i

with the outcome model S_a (Cox per arm), the censoring model G (Cox per arm; Kaplan-Meier
without covariates), dM^C_i the censoring martingale and the propensity pi = P(A=1|X). For the
ATE g_i = 1 and h_i = 1(A_i=a) / P(A=a|X_i); for the ATT g_i = A_i and h_i = 1(A_i=a) pi_i /
P(A=a|X_i) (1 for the treated, the odds for controls). h is rescaled so that sum b h = sum b g
(riskRegression's normalisation), so the estimate is a weighted mean.

Base weights b (`weights_col`, e.g. sampling weights of controls) define the target
population: they multiply every row's contribution and are case weights in all three working
models; they are treated as fixed. The standard errors come from the efficient influence
function IF_i = b_i (phi_i - g_i F_hat) / sum b g, summed within cluster (a person appears in
several sequential trials) and squared: Var = sum_c (sum_{i in c} IF_i)^2, as riskRegression
(no small-sample factor; nuisance estimation ignored, which is valid when the working models are
right). Confidence intervals are Wald intervals on the survival / difference scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from .aipw_models import HazardModel, check_propensity, fit_hazard, fit_propensity_scores

__all__ = ["AdjustedCurves", "aipw_survival"]


@dataclass
class AdjustedCurves:
    """Result of `aipw_survival`.

    `survival`: one row per (arm, time): arm (1 treated, 0 control), time, survival (AIPTW),
    se, lower, upper, gformula (outcome-model standardisation), ipw_km (weighted Kaplan-Meier
    with the propensity weights, point estimate only).
    `risk_difference`: one row per time: estimate = risk treated - risk control, se, lower, upper.
    `rmst`: None, or one row: tau, rmst_treated, se_treated, rmst_control, se_control,
    difference (treated - control), se, lower, upper.
    `influence`: cluster-summed influence values of S_1(t) and S_0(t), arrays (clusters, times).
    """

    survival: pd.DataFrame
    risk_difference: pd.DataFrame
    rmst: pd.DataFrame | None
    estimand: str
    n_rows: int
    n_clusters: int
    influence: dict[int, np.ndarray] = field(repr=False)
    propensity: np.ndarray = field(repr=False)


@dataclass
class _ArmFit:
    """Risk F_a at the requested times and RMST of one arm, with row influence values."""

    risk: np.ndarray  # F_a(t) at the requested times
    risk_if: np.ndarray  # (rows, times)
    rmst: float
    rmst_if: np.ndarray  # (rows,)


def _arm_terms(
    rows: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    g: np.ndarray,
    h: np.ndarray,
    b: np.ndarray,
    outcome: HazardModel,
    censor: HazardModel | None,
    grid: np.ndarray,
    record: np.ndarray,
    width: np.ndarray,
) -> _ArmFit:
    """Risk F_a on the sorted `grid`: kept where `record`, integrated with `width` for RMST.

    One pass over the censoring jump times and the grid in time order (a loop over time, not
    rows). The arm's rows are held in time order, so the rows at risk of censoring at a jump
    are a suffix (a slice, no mask over every row); only rows with g or h non-zero (`need`:
    the target population and the arm) enter phi, whose influence is 0 elsewhere. The RMST's
    influence is accumulated as integrals of phi and of the estimate, combined once at the end.
    """
    needed = g != 0
    needed[rows] = True
    need = np.flatnonzero(needed)
    order = np.argsort(time[rows], kind="stable")
    arm = rows[order]  # arm rows, in time order
    pos = np.searchsorted(need, arm)  # their places among the needed rows
    t_a, d_a, h_a = time[arm], event[arm], h[arm]
    g_n, b_n = g[need], b[need]
    bg_n = b_n * g_n
    total = float(np.sum(b * g))
    r_arm = outcome.risk[arm]
    r_need = outcome.risk[need]
    if censor is None:  # no censoring in the arm: G = 1, no augmentation
        q = d_a.astype(float)
        c_jumps, c_dlam = np.zeros(0), np.zeros(0)
    else:
        c_risk = censor.risk[order]  # censoring model rows follow the arm's own order
        if censor.product_limit:
            g_before = censor.prod[censor.index(t_a, before=True)]
        else:
            g_before = np.exp(-c_risk * censor.cum[censor.index(t_a, before=True)])
        q = d_a / g_before
        c_jumps, c_dlam = censor.jumps, censor.dlam

    def surv_out(u: float, lo: int) -> np.ndarray | float:
        k = outcome.index(u)
        return outcome.prod[k] if outcome.product_limit else np.exp(-r_arm[lo:] * outcome.cum[k])

    a1, a2 = np.zeros(arm.size), np.zeros(arm.size)
    risk, risk_if = [], []
    rmst, phi_int, est_int = 0.0, np.zeros(need.size), 0.0
    j = 0
    for t, keep, w in zip(grid, record, width, strict=True):
        while j < c_jumps.size and c_jumps[j] <= t:
            u = c_jumps[j]
            lo = int(np.searchsorted(t_a, u, side="left"))
            hi = int(np.searchsorted(t_a, u, side="right"))
            # at risk of censoring at u: time > u, or censored at u (events at u leave first)
            if censor.product_limit:
                comp = np.full(arm.size - lo, c_dlam[j])
                g_u = censor.prod[j + 1]
            else:
                comp = c_dlam[j] * c_risk[lo:]
                g_u = np.exp(-c_risk[lo:] * censor.cum[j + 1])
            dm = -comp
            tie = d_a[lo:hi] == 0
            dm[: hi - lo] = np.where(tie, 1.0 - comp[: hi - lo], 0.0)
            s_u = surv_out(u, lo)
            with np.errstate(divide="ignore", invalid="ignore"):
                contrib = dm / (s_u * g_u)
            contrib[: hi - lo][~tie] = 0.0
            a1[lo:] += contrib
            a2[lo:] += (1.0 - s_u) * contrib
            j += 1
        k = outcome.index(t)
        f_need = (np.full(need.size, 1.0 - outcome.prod[k]) if outcome.product_limit
                  else 1.0 - np.exp(-r_need * outcome.cum[k]))
        f_a = f_need[pos]
        phi = g_n * f_need
        phi[pos] += h_a * (q * (t_a <= t) - f_a + f_a * a1 - a2)
        est = float(b_n @ phi) / total
        if keep:
            infl = np.zeros(time.size)
            infl[need] = (b_n * phi - bg_n * est) / total
            risk.append(est)
            risk_if.append(infl)
        if w > 0:  # RMST = integral of the survival 1 - F over [0, tau]
            rmst += (1.0 - est) * w
            phi_int += phi * w
            est_int += est * w
    rmst_if = np.zeros(time.size)
    rmst_if[need] = -(b_n * phi_int - bg_n * est_int) / total
    return _ArmFit(np.array(risk), np.column_stack(risk_if), rmst, rmst_if)


def _weighted_km(time: np.ndarray, event: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Kaplan-Meier survival with case weights `w`, evaluated at `at`."""
    ut, inv = np.unique(time, return_inverse=True)
    at_risk = np.cumsum(np.bincount(inv, weights=w)[::-1])[::-1]
    dead = np.bincount(inv, weights=w * event, minlength=ut.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(dead > 0, 1.0 - dead / at_risk, 1.0)
    surv = np.concatenate([[1.0], np.cumprod(step)])
    return surv[np.searchsorted(ut, at, side="right")]


def _cluster_sum(infl: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
    """Sum influence rows within cluster (identity when every row is its own cluster)."""
    if codes is None:
        return infl
    n_cl = int(codes.max()) + 1
    flat = infl.reshape(infl.shape[0], -1)
    out = np.stack([np.bincount(codes, weights=col, minlength=n_cl) for col in flat.T], axis=1)
    return out.reshape((n_cl, *infl.shape[1:]))


def _check_arm(arm: int, time: np.ndarray, event: np.ndarray, horizon: float) -> None:
    """Reasons an arm cannot give S_a(horizon): no rows, no events, nobody followed to it."""
    if time.size == 0:
        raise ValueError(f"arm {arm}: no rows")
    if event.sum() == 0:
        raise ValueError(f"arm {arm}: no events, the outcome model is not estimable")
    last = time.max()
    if last < horizon and not event[time == last].all():
        raise ValueError(f"arm {arm}: everyone is censored before time {horizon:g}, "
                         "survival there is not identified")


def aipw_survival(
    frame: pd.DataFrame,
    time_col: str,
    event_col: str,
    treated_col: str,
    covariates: Sequence[str],
    times: Sequence[float],
    estimand: Literal["ATT", "ATE"] = "ATT",
    weights_col: str | None = None,
    cluster_col: str | None = None,
    ps: np.ndarray | str | None = None,
    *,
    tau: float | None = None,
    outcome_covariates: Sequence[str] | None = None,
    censoring_covariates: Sequence[str] | None = None,
    conf_level: float = 0.95,
) -> AdjustedCurves:
    """Doubly robust survival S_a(t) per arm, risk difference and RMST difference, with SEs.

    `covariates` feed all three working models unless `outcome_covariates` /
    `censoring_covariates` override them (an empty list gives Kaplan-Meier-type models). `ps`
    (array or column name) replaces the logistic propensity model. `tau` (default: none) adds
    the restricted mean survival time up to tau. Covariates must be numeric (dummy-coded).
    Raises ValueError with the reason when something is not estimable; never returns NaN.
    """
    if estimand not in ("ATT", "ATE"):
        raise ValueError("estimand must be 'ATT' or 'ATE'")
    covariates = list(covariates)
    out_cov = covariates if outcome_covariates is None else list(outcome_covariates)
    cen_cov = covariates if censoring_covariates is None else list(censoring_covariates)
    req = np.asarray(sorted(set(map(float, times))), dtype=float)
    if req.size == 0 or (req < 0).any() or (tau is not None and tau <= 0):
        raise ValueError("times must be non-empty and non-negative, tau positive")
    used = [time_col, event_col, treated_col, *dict.fromkeys([*covariates, *out_cov, *cen_cov])]
    used += [c for c in (weights_col, cluster_col) if c is not None]
    if isinstance(ps, str):
        used.append(ps)
    data = frame[list(dict.fromkeys(used))].reset_index(drop=True)
    if data[[time_col, event_col, treated_col]].isna().any().any():
        raise ValueError("missing values in time, event or treatment")
    time = data[time_col].to_numpy(dtype=float)
    event = data[event_col].to_numpy(dtype=float)
    a = data[treated_col].to_numpy(dtype=float)
    if not (np.isin(event, (0.0, 1.0)).all() and np.isin(a, (0.0, 1.0)).all()):
        raise ValueError("event and treatment columns must be 0/1")
    b = np.ones(len(data)) if weights_col is None else data[weights_col].to_numpy(dtype=float)
    if not np.isfinite(b).all() or (b < 0).any() or b.sum() == 0:
        raise ValueError("base weights must be finite, non-negative and not all zero")
    horizon = max(req.max(), tau or 0.0)
    for arm in (1, 0):
        _check_arm(arm, time[a == arm], event[a == arm], horizon)

    if ps is None:
        pi = fit_propensity_scores(data, a, b, covariates) if covariates else None
        if pi is None:
            pi = np.full(len(data), np.average(a, weights=b))
    else:
        pi = data[ps].to_numpy(dtype=float) if isinstance(ps, str) else np.asarray(ps, float)
        if pi.shape != (len(data),):
            raise ValueError("ps must have one score per row")
        check_propensity(pi)
    g = np.ones(len(data)) if estimand == "ATE" else a.copy()
    codes = None if cluster_col is None else pd.factorize(data[cluster_col])[0]
    if codes is not None and (codes < 0).any():
        raise ValueError("missing cluster identifiers")

    survival, infl_s, rmst_arm = {}, {}, {}
    for arm in (1, 0):
        in_arm = a == arm
        p_arm = pi if arm == 1 else 1.0 - pi
        h = in_arm / p_arm * (1.0 if estimand == "ATE" else pi)
        h *= np.sum(b * g) / np.sum(b * h)
        rows = data[in_arm]
        t_a, d_a, b_a = time[in_arm], event[in_arm], b[in_arm]
        what = f"arm {arm}"
        outcome = fit_hazard(rows, data, t_a, d_a, b_a, out_cov, f"outcome model, {what}")
        # censorings at or after the last time needed carry no information (their
        # augmentation term is 0 and no IPCW weight uses them): administrative end of follow-up
        c_a = (d_a == 0) & (t_a < horizon)
        censor = None
        if c_a.any():
            censor = fit_hazard(rows, rows, t_a, c_a.astype(float), b_a, cen_cov,
                                f"censoring model, {what}", leave=d_a)
        rgrid = np.zeros(0) if tau is None else np.unique(np.r_[0.0, t_a[t_a < tau]])
        grid = np.unique(np.r_[req, rgrid])
        width = np.zeros(grid.size)
        if tau is not None:
            width[np.searchsorted(grid, rgrid)] = np.diff(np.r_[rgrid, tau])
        fit = _arm_terms(np.flatnonzero(in_arm), time, event, g, h, b, outcome, censor, grid,
                         np.isin(grid, req), width)
        gform = np.array([np.sum(b * g * outcome.survival(t)) / np.sum(b * g) for t in req])
        ipw_km = _weighted_km(t_a, d_a, (b * h)[in_arm], req)
        survival[arm] = pd.DataFrame({"arm": arm, "time": req, "survival": 1.0 - fit.risk,
                                      "gformula": gform, "ipw_km": ipw_km})
        infl_s[arm] = _cluster_sum(-fit.risk_if, codes)
        rmst_arm[arm] = (fit.rmst, _cluster_sum(fit.rmst_if[:, None], codes)[:, 0])

    z = float(stats.norm.ppf(0.5 + conf_level / 2.0))

    def wald(est: np.ndarray, infl: np.ndarray) -> dict[str, np.ndarray]:
        se = np.sqrt(np.sum(infl**2, axis=0))
        return {"estimate": est, "se": se, "lower": est - z * se, "upper": est + z * se}

    frames = []
    for arm in (1, 0):
        ci = wald(survival[arm]["survival"].to_numpy(), infl_s[arm])
        frames.append(survival[arm].assign(se=ci["se"], lower=ci["lower"], upper=ci["upper"]))
    surv = pd.concat(frames, ignore_index=True)[
        ["arm", "time", "survival", "se", "lower", "upper", "gformula", "ipw_km"]]
    rd = wald(survival[0]["survival"].to_numpy() - survival[1]["survival"].to_numpy(),
              infl_s[0] - infl_s[1])
    risk_diff = pd.DataFrame({"time": req, **rd})
    rmst = None
    if tau is not None:
        diff = wald(np.array([rmst_arm[1][0] - rmst_arm[0][0]]),
                    (rmst_arm[1][1] - rmst_arm[0][1])[:, None])
        rmst = pd.DataFrame({
            "tau": [float(tau)],
            "rmst_treated": [rmst_arm[1][0]],
            "se_treated": [float(np.sqrt(np.sum(rmst_arm[1][1] ** 2)))],
            "rmst_control": [rmst_arm[0][0]],
            "se_control": [float(np.sqrt(np.sum(rmst_arm[0][1] ** 2)))],
            "difference": diff["estimate"], "se": diff["se"],
            "lower": diff["lower"], "upper": diff["upper"]})
    for name, tab in (("survival", surv), ("risk difference", risk_diff), ("rmst", rmst)):
        if tab is not None and not np.isfinite(tab.select_dtypes("number").to_numpy()).all():
            raise ValueError(f"{name}: non-finite estimate (extreme weights or model "
                             "predictions), not estimable")
    return AdjustedCurves(
        survival=surv, risk_difference=risk_diff, rmst=rmst, estimand=estimand,
        n_rows=len(data), n_clusters=len(data) if codes is None else int(codes.max()) + 1,
        influence=infl_s, propensity=pi)
