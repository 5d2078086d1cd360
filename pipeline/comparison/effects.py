"""Effect measures after matching/weighting, sensitivity (E-value) and power helpers.

Standard errors treat the weights as known (they ignore the estimation of the propensity
score). For ATE weights that is conservative (Lunceford & Davidian 2004); for ATT weights
it is usually close. Use the bootstrap (see `bootstrap.py`) when that matters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "EffectEstimate",
    "evalue",
    "ipw_ate",
    "minimum_detectable_hr",
    "natural_frequencies",
    "risk_difference_ratio",
]


@dataclass(frozen=True)
class EffectEstimate:
    """A point estimate with CI and two-sided p-value.

    For ratio measures `se` is on the log scale and the CI is exponentiated.
    """

    measure: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int

    def as_dict(self) -> dict[str, float | str | int]:
        """Plain dict (for tables and reports)."""
        return asdict(self)


def _arrays(outcome, treated, weights):
    y = np.asarray(outcome, dtype=float)
    t = np.asarray(treated).astype(bool)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if not (y.shape == t.shape == w.shape):
        raise ValueError("outcome, treated and weights must have the same length")
    if np.isnan(y).any() or np.isnan(w).any():
        raise ValueError("missing outcome or weight values")
    if (w < 0).any():
        raise ValueError("negative weights")
    keep = w > 0
    return y[keep], t[keep], w[keep], keep


def _cluster_sum(psi: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    if cluster is None:
        return psi
    codes, _ = pd.factorize(np.asarray(cluster))
    return np.bincount(codes, weights=psi)


def risk_difference_ratio(
    outcome: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cluster: np.ndarray | None = None,
    alpha: float = 0.05,
) -> dict[str, float | EffectEstimate]:
    """Weighted risks, risk difference and risk ratio for a binary outcome.

    Risks are weighted means per group. Variances are sandwich (HC0 / M-estimation)
    variances of the weighted means: identical to WLS ``y ~ treated`` with HC0 (or GEE
    with an independence working correlation) for the RD, and the delta method on the
    log scale for the RR. `cluster` (e.g. person id when controls recur across risk sets,
    or matched set) sums influence contributions within clusters, without a small-sample
    correction, as GEE does.
    """
    y, t, w, keep = _arrays(outcome, treated, weights)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcome must be 0/1")
    if not t.any() or t.all():
        raise ValueError("need both groups with positive weight")
    cl = None if cluster is None else np.asarray(cluster)[keep]
    w1, w0 = w * t, w * ~t
    p1 = float(np.sum(w1 * y) / w1.sum())
    p0 = float(np.sum(w0 * y) / w0.sum())
    psi1 = w1 * (y - p1) / w1.sum()
    psi0 = w0 * (y - p0) / w0.sum()
    z = stats.norm.ppf(1 - alpha / 2)
    n = int(len(y))

    rd = p1 - p0
    se_rd = float(np.sqrt(np.sum(_cluster_sum(psi1 - psi0, cl) ** 2)))
    p_rd = float(2 * stats.norm.sf(abs(rd) / se_rd)) if se_rd > 0 else np.nan
    rd_est = EffectEstimate("risk difference", rd, se_rd, rd - z * se_rd, rd + z * se_rd, p_rd, n)

    if p1 > 0 and p0 > 0:
        lrr = np.log(p1 / p0)
        se_l = float(np.sqrt(np.sum(_cluster_sum(psi1 / p1 - psi0 / p0, cl) ** 2)))
        p_rr = float(2 * stats.norm.sf(abs(lrr) / se_l)) if se_l > 0 else np.nan
        rr_est = EffectEstimate(
            "risk ratio",
            float(np.exp(lrr)),
            se_l,
            float(np.exp(lrr - z * se_l)),
            float(np.exp(lrr + z * se_l)),
            p_rr,
            n,
        )
    else:
        rr_est = EffectEstimate("risk ratio", np.nan, np.nan, np.nan, np.nan, np.nan, n)
    return {"risk_treated": p1, "risk_control": p0, "rd": rd_est, "rr": rr_est}


def ipw_ate(
    outcome: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cov_type: Literal["HC0", "HC1", "nonrobust"] = "HC0",
    cluster: np.ndarray | None = None,
    alpha: float = 0.05,
) -> EffectEstimate:
    """Weighted difference in means of a continuous outcome (WLS ``y ~ 1 + treated``).

    The estimand is whatever the weights target (ATE or ATT weights; none = crude).
    ``cov_type="HC0"`` is the robust sandwich that equals GEE with independence working
    correlation (Hernán & Robins' IPW analysis); ``"nonrobust"`` gives the ordinary
    model-based OLS SE with a t-based CI (the classic two-sample comparison). `cluster`
    gives a cluster-robust SE without small-sample correction (GEE-like).
    """
    import statsmodels.api as sm  # heavy: imported where used

    y, t, w, keep = _arrays(outcome, treated, weights)
    X = np.column_stack([np.ones_like(y), t.astype(float)])
    model = sm.WLS(y, X, weights=w)
    if cluster is not None:
        groups = pd.factorize(np.asarray(cluster)[keep])[0]
        res = model.fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
    elif cov_type == "nonrobust":
        res = model.fit()
    else:
        res = model.fit(cov_type=cov_type)
    lo, hi = np.asarray(res.conf_int(alpha=alpha))[1]
    label = "difference in means" if weights is None else "weighted difference in means"
    return EffectEstimate(
        label,
        float(res.params[1]),
        float(res.bse[1]),
        float(lo),
        float(hi),
        float(res.pvalues[1]),
        int(len(y)),
    )


def _hr_to_rr(hr: float) -> float:
    """VanderWeele's conversion of a hazard ratio to a risk ratio for a common outcome."""
    return (1.0 - 0.5 ** np.sqrt(hr)) / (1.0 - 0.5 ** np.sqrt(1.0 / hr))


def _evalue_rr(rr: float) -> float:
    rr = 1.0 / rr if rr < 1 else rr
    return float(rr + np.sqrt(rr * (rr - 1.0)))


def evalue(
    estimate: float,
    lower: float | None = None,
    upper: float | None = None,
    measure: Literal["RR", "HR", "OR"] = "RR",
    rare: bool = True,
) -> dict[str, float | None]:
    """E-value (VanderWeele & Ding 2017) for a ratio estimate and its confidence limit.

    The E-value is the minimum strength of association (risk-ratio scale) an unmeasured
    confounder would need with both treatment and outcome to explain the estimate away:
    RR + sqrt(RR (RR - 1)), with RR < 1 inverted first. HR and OR are used as RR when the
    outcome is rare; for a common outcome an HR becomes (1 - 0.5^sqrt(HR)) /
    (1 - 0.5^sqrt(1/HR)) and an OR becomes sqrt(OR). The CI E-value uses the limit
    closer to 1 and is 1 if the interval includes 1.
    """
    if estimate <= 0:
        raise ValueError("estimate must be a positive ratio")

    def to_rr(x: float) -> float:
        if measure == "RR" or rare:
            return float(x)
        if measure == "HR":
            return float(_hr_to_rr(x))
        if measure == "OR":
            return float(np.sqrt(x))
        raise ValueError(f"unknown measure {measure!r}")

    if measure not in ("RR", "HR", "OR"):
        raise ValueError(f"unknown measure {measure!r}")
    rr = to_rr(estimate)
    out: dict[str, float | None] = {
        "rr": rr,
        "evalue": _evalue_rr(rr) if rr != 1 else 1.0,
        "evalue_ci": None,
    }
    if estimate > 1 and lower is not None:
        lim = to_rr(lower)
        out["evalue_ci"] = _evalue_rr(lim) if lim > 1 else 1.0
    elif estimate < 1 and upper is not None:
        lim = to_rr(upper)
        out["evalue_ci"] = _evalue_rr(lim) if lim < 1 else 1.0
    elif estimate == 1:
        out["evalue_ci"] = 1.0
    return out


def natural_frequencies(
    risk_treated: float, risk_control: float, per: int = 100
) -> dict[str, float | str]:
    """Express two risks as 'x out of `per` people' (for lay readers) plus NNT/NNH.

    Counts are rounded to whole people; `nnt` is 1/|risk difference| (people to treat
    for one event fewer, or more, `direction` says which).
    """
    for r in (risk_treated, risk_control):
        if not 0 <= r <= 1:
            raise ValueError("risks must be in [0, 1]")
    a = risk_treated * per
    b = risk_control * per
    rd = risk_treated - risk_control
    direction = "fewer" if rd < 0 else "more" if rd > 0 else "no difference"
    nnt = float(1.0 / abs(rd)) if rd != 0 else float("inf")
    sentence = (
        f"Out of {per} people like those in the programme, about {round(a)} would have the "
        f"outcome after the programme, compared with about {round(b)} out of {per} "
        f"without it."
    )
    return {
        "per": per,
        "treated": float(a),
        "control": float(b),
        "treated_rounded": int(round(a)),
        "control_rounded": int(round(b)),
        "difference": float(a - b),
        "direction": direction,
        "nnt": nnt,
        "sentence": sentence,
    }


def minimum_detectable_hr(
    n_treated: int,
    n_control: int,
    event_prob: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Smallest protective hazard ratio (< 1) detectable with a two-sided log-rank/Cox test.

    Schoenfeld (1983): events needed D = (z_{1-alpha/2} + z_power)^2 / (p (1-p) log(HR)^2)
    with p the treated share. Here D = event_prob * (n_treated + n_control) is the
    expected number of events, solved for HR. The harmful counterpart is 1 / result.
    """
    n = n_treated + n_control
    if n_treated <= 0 or n_control <= 0 or not 0 < event_prob <= 1:
        raise ValueError("need positive group sizes and 0 < event_prob <= 1")
    p = n_treated / n
    d = event_prob * n
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(np.exp(-z / np.sqrt(d * p * (1 - p))))
