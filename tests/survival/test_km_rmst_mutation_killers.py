"""Exact checks of Kaplan-Meier and RMST details that the broader tests left open.

Written against the mutants that survived `make mutation` (docs/mutation_testing.md): each
test pins a number that a plausible slip would change (a Greenwood increment at a censoring
time, the coding of the two groups, the p-value, the guard for a curve that reaches 0, the
tolerance of the median rule, the zero-weight rows) to a value worked out by hand here,
with fractions, or from R/survRM2 values in ../shared/REFERENCE_RESULTS.md.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction as F

import numpy as np
import pandas as pd
import pytest

from pipeline.survival import kaplan_meier, median_survival, rmst, rmst_difference, survival_at

Z95 = 1.959963984540054  # qnorm(0.975)

# six people; a death and a censoring tie at t = 2; t = 4 is a censoring-only time
TIME = np.array([1, 2, 2, 3, 4, 5], dtype=float)
EVENT = np.array([1, 1, 0, 1, 0, 1])


def _loglog_band(s: float, se_log: float) -> tuple[float, float]:
    """R's conf.type = "log-log" band for S with SE of log S: S^exp(-+z se / log S)."""
    shift = Z95 * se_log / math.log(s)
    return s ** math.exp(-shift), s ** math.exp(shift)


def _no_warnings(fn, *args, **kwargs):
    """Call ``fn`` with every warning turned into an error (numpy RuntimeWarning included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# --- Kaplan-Meier: the Greenwood sum and the band at every row ---------------------------


def test_greenwood_adds_nothing_at_a_censoring_only_time():
    km = kaplan_meier(TIME, EVENT)
    # var(log S) = sum over event times d / (n (n - d)): 1/30, +1/20, +1/6; t = 4 (censoring
    # only) adds 0, so its SE and band equal those at t = 3; at t = 5 everyone left fails.
    var = [0.0, 1 / 30, 1 / 30 + 1 / 20, 1 / 4, 1 / 4]
    surv = [1.0, 5 / 6, 2 / 3, 4 / 9, 4 / 9]
    expected_se = [s * math.sqrt(v) for s, v in zip(surv, var, strict=True)]
    np.testing.assert_allclose(km["std_err"].iloc[:5], expected_se, rtol=1e-12)
    for row in (1, 2, 3, 4):
        lower, upper = _loglog_band(surv[row], math.sqrt(var[row]))
        assert km["lower"].iloc[row] == pytest.approx(lower, rel=1e-12)
        assert km["upper"].iloc[row] == pytest.approx(upper, rel=1e-12)
    # the band at t = 4 is the band at t = 3, not [0, 1]
    assert (km.loc[4, "lower"], km.loc[4, "upper"]) == pytest.approx((0.0662, 0.7850), abs=1e-4)
    # S = 0 at t = 5: SE and log-log band are not defined (NaN, float column), as R
    assert km["std_err"].dtype == np.float64
    assert np.isnan(km.loc[5, "std_err"]) and np.isnan(km.loc[5, "upper"])


def test_time_zero_row_and_attributes():
    km = kaplan_meier(TIME, EVENT, conf_level=0.9, conf_type="log")
    first = km.iloc[0]
    assert first[["time", "n_risk", "n_event", "n_censor"]].tolist() == [0, 6, 0, 0]
    assert first[["surv", "std_err", "lower", "upper"]].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert km.attrs == {"conf_level": 0.9, "conf_type": "log"}
    assert list(km.columns) == [
        "time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper"
    ]


def test_zero_weight_row_counts_for_nothing():
    # weight 0 on the last person: the curve, SE and band are those of the other two, carried
    # to t = 3 with nobody (weight) at risk there -- no NaN, no infinite variance
    km = _no_warnings(kaplan_meier, [1, 2, 3], [1, 0, 1], weights=[1, 1, 0])
    assert km["n_risk"].tolist() == [2, 2, 1, 0]
    assert km["n_event"].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(km["surv"], [1, 0.5, 0.5, 0.5])
    se = 0.5 * math.sqrt(1 / 2)  # var(log S) = 1 / (2 * 1)
    np.testing.assert_allclose(km["std_err"], [0, se, se, se], rtol=1e-12)
    lower, upper = _loglog_band(0.5, math.sqrt(0.5))
    np.testing.assert_allclose(km["lower"], [1, lower, lower, lower], rtol=1e-12)
    np.testing.assert_allclose(km["upper"], [1, upper, upper, upper], rtol=1e-12)


def test_curve_reaching_zero_raises_no_numpy_warnings():
    km = _no_warnings(kaplan_meier, [1, 2, 2], [1, 1, 1])
    np.testing.assert_allclose(km["surv"], [1, 2 / 3, 0])
    assert np.isnan(km["std_err"].iloc[2])
    assert _no_warnings(median_survival, km)[0] == 2.0


@pytest.mark.parametrize("t", [0.0, 0.5])
def test_event_at_time_zero_or_below_one_is_allowed(t):
    km = kaplan_meier([t, 3.0], [1, 0])
    assert km["time"].tolist() == [0.0, t, 3.0]
    assert km["surv"].tolist() == [1.0, 0.5, 0.5]


def test_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="^time must be non-negative$"):
        kaplan_meier([-1.0, 2.0], [1, 0])
    with pytest.raises(ValueError, match="^time contains missing values$"):
        kaplan_meier([np.nan, 2.0], [1, 0])
    with pytest.raises(ValueError, match="^time contains missing values$"):
        rmst([np.nan, 2.0], [1, 0], tau=1)
    with pytest.raises(ValueError, match="^time contains missing values$"):
        rmst_difference([np.nan, 2.0], [1, 0], [0, 1], tau=1)


# --- survival_at and the median rule (R print.survfit / survmean) ------------------------


def test_survival_at_time_zero_is_one_and_before_it_is_not_estimated():
    km = kaplan_meier(TIME, EVENT)
    assert survival_at(km, 0.0) == (1.0, 1.0, 1.0)
    assert all(np.isnan(survival_at(km, -0.5)))


def test_median_when_the_first_event_time_is_below_half():
    # S(1) = 1/4: the median is 1 (R), whatever follows
    km = kaplan_meier([1, 1, 1, 2], [1, 1, 1, 0])
    assert median_survival(km)[0] == 1.0


def test_median_midpoint_rule_at_exactly_half():
    # S = 1/2 on [1, 2), then 0: R takes the midpoint of 1 and the next time below, 1.5
    assert median_survival(kaplan_meier([1, 2], [1, 1]))[0] == 1.5
    # S reaches 1/2 at the last time and stays there: the median is that time, 2
    assert median_survival(kaplan_meier([1, 2], [0, 1]))[0] == 2.0


def _table(surv, lower=None, upper=None):
    """A hand-made kaplan_meier-shaped table on times 0, 1, 2, ..."""
    surv = [1.0, *surv]
    return pd.DataFrame({
        "time": np.arange(len(surv), dtype=float),
        "surv": surv,
        "lower": [1.0, *(lower or surv[1:])],
        "upper": [1.0, *(upper or surv[1:])],
    })


def test_median_tolerance_is_strict_sqrt_machine_epsilon():
    tol = 2.0**-26  # sqrt(.Machine$double.eps), exactly
    # 1/2 + tol is not below 1/2: the median is the next time (2)
    assert median_survival(_table([0.5 + tol, 0.25]))[0] == 2.0
    # 1/2 - tol is below 1/2 but not "equal to 1/2": no midpoint, the median is 1
    assert median_survival(_table([0.5 - tol, 0.25]))[0] == 1.0
    # within the tolerance it counts as 1/2: midpoint of 1 and 2
    assert median_survival(_table([0.5 - tol / 2, 0.25]))[0] == 1.5


def test_median_confidence_limits_from_the_band():
    km = _table([0.8, 0.6, 0.4, 0.2], lower=[0.6, 0.4, 0.2, 0.1], upper=[0.95, 0.8, 0.6, 0.45])
    assert median_survival(km) == (3.0, 2.0, 4.0)


# --- RMST --------------------------------------------------------------------------------


def test_rmst_se_when_the_curve_drops_to_zero_before_tau():
    # S = 2/3 on [1, 3), 0 from 3; tau = 5. Area 1 + 2/3 + 2/3 = 7/3. R sets the Greenwood
    # term at t = 3 (n = d) to 0: var = (area from 1 to tau)^2 / (3 * 2) = (4/3)^2 / 6
    est, se = _no_warnings(rmst, [1, 2, 3], [1, 0, 1], 5)
    assert est == pytest.approx(7 / 3, rel=1e-12)
    assert se == pytest.approx(math.sqrt(8 / 27), rel=1e-12)


def test_rmst_tau_must_be_positive_but_may_be_below_one():
    with pytest.raises(ValueError, match="^tau must be positive$"):
        rmst(TIME, EVENT, 0)
    assert rmst(TIME, EVENT, 0.5) == (0.5, 0.0)


def _rmst_by_hand() -> dict[str, float]:
    """rmst_1 - rmst_0 at tau = 4 for the example of the difference tests, in fractions."""
    # group 0 ("comparison"): TIME/EVENT; area 1 + 5/6 + 2/3 + 4/9 = 53/18
    a1, a2, a3 = F(5, 6) + F(2, 3) + F(4, 9), F(2, 3) + F(4, 9), F(4, 9)
    r0, v0 = 1 + a1, a1**2 / 30 + a2**2 / 20 + a3**2 / 6
    # group 1 ("treated"): times 2, 3+, 5+, 6 -> S = 3/4 from 2; area 2 + 2 * 3/4 = 7/2;
    # one event (n = 4, d = 1) with area 3/2 after it
    r1, v1 = F(7, 2), F(3, 2) ** 2 / 12
    diff, se = float(r1 - r0), math.sqrt(v0 + v1)
    p = math.erfc(abs(diff) / se / math.sqrt(2))  # two-sided normal p
    return {"rmst_0": float(r0), "se_0": math.sqrt(v0), "rmst_1": float(r1),
            "se_1": math.sqrt(v1), "diff": diff, "se": se,
            "lower": diff - Z95 * se, "upper": diff + Z95 * se, "p": p}


@pytest.mark.parametrize("labels", [("treated", "comparison"), (1, 0)])
def test_rmst_difference_codes_groups_by_sorted_label_not_row_order(labels):
    # the treated (sorted second) rows come first: group 1 must still be "treated"
    treated, comparison = labels
    time = np.r_[[2, 3, 5, 6], TIME]
    event = np.r_[[1, 0, 0, 1], EVENT]
    group = [treated] * 4 + [comparison] * 6
    got = rmst_difference(time, event, group, tau=4)
    want = _rmst_by_hand()
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-10), key
    assert want["diff"] == pytest.approx(5 / 9)  # treated live 5/9 longer on average
    assert want["p"] == pytest.approx(0.3845, abs=1e-4)


def test_rmst_difference_p_value_matches_r_rossi():
    # REFERENCE_RESULTS.md: RMST52 fin=0 44.833 (SE 0.918), fin=1 46.875 (SE 0.793)
    # -> z = 2.042 / hypot(0.918, 0.793) = 1.683, two-sided p = 0.0923
    lifelines_datasets = pytest.importorskip("lifelines.datasets")
    rossi = lifelines_datasets.load_rossi()
    res = rmst_difference(rossi["week"], rossi["arrest"], rossi["fin"], 52)
    assert res["p"] == pytest.approx(0.0923, abs=0.001)
    assert res["se"] == pytest.approx(math.hypot(0.918, 0.793), abs=0.005)


def test_rmst_difference_without_variance_has_no_p_value():
    # both curves known without error (everyone fails together at 2; nobody fails): se = 0
    res = rmst_difference([2, 2, 5, 6], [1, 1, 0, 0], [0, 0, 1, 1], tau=4)
    assert (res["rmst_0"], res["rmst_1"], res["diff"], res["se"]) == (2.0, 4.0, 2.0, 0.0)
    assert (res["lower"], res["upper"]) == (2.0, 2.0)
    assert np.isnan(res["p"])


@pytest.mark.parametrize("group", [[0, 0, 1, 2], [0, 0, 0, 0], [0.0, 1.0, np.nan, 1.0]])
def test_rmst_difference_needs_exactly_two_levels(group):
    with pytest.raises(ValueError, match="^group must have exactly two non-missing levels$"):
        rmst_difference([1, 2, 3, 4], [1, 0, 1, 0], group, tau=3)
