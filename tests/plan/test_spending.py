"""Boundaries against published Lan–DeMets O'Brien–Fleming values and an independent
multivariate-normal computation; power against Schoenfeld and a Monte Carlo."""

import numpy as np
import pytest
from scipy import stats

from pipeline.plan.power import detectable_hr, fixed_power, required_events, sequential_power
from pipeline.plan.simulate import canonical_looks, first_crossing
from pipeline.plan.spending import boundaries, crossing_probabilities, spent

# gsDesign sfLDOF / rpact asOF, one-sided 0.025 per side, equally spaced looks
PUBLISHED = {3: [3.7103, 2.5114, 1.9930], 4: [4.3326, 2.9631, 2.3590, 2.0141],
             5: [4.8769, 3.3569, 2.6803, 2.2898, 2.0310]}


@pytest.mark.parametrize("k", sorted(PUBLISHED))
def test_obrien_fleming_matches_published(k):
    b = boundaries(np.arange(1, k + 1) / k, 0.05)
    assert np.allclose(b.z, PUBLISHED[k], atol=2e-4)


def test_two_looks_against_multivariate_normal():
    """Error spent at look 2 computed independently from the bivariate normal CDF."""
    t = np.array([0.4, 1.0])
    b = boundaries(t, 0.05)
    rho = np.sqrt(t[0] / t[1])
    c1, c2 = b.z
    mvn = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]])
    inside_both = (mvn.cdf([c1, c2]) - mvn.cdf([-c1, c2]) - mvn.cdf([c1, -c2])
                   + mvn.cdf([-c1, -c2]))
    inside_first = 1 - 2 * stats.norm.sf(c1)
    assert inside_first - inside_both == pytest.approx(0.05 - b.alpha_spent[0], abs=2e-5)


def test_spending_totals_and_unequal_looks():
    t = np.array([0.13, 0.31, 0.32, 0.77, 1.0])
    b = boundaries(t, 0.05)
    up, lo = crossing_probabilities(b.t, b.z)
    assert up.sum() + lo.sum() == pytest.approx(0.05, abs=1e-6)
    assert np.all(np.diff(b.z) < 0)
    assert spent(1.0, 0.05) == pytest.approx(0.05)
    pocock = boundaries(np.arange(1, 6) / 5, 0.05, "pocock")
    assert np.ptp(pocock.z) < 0.2 and pocock.z[-1] > 1.96


def test_single_look_is_fixed_design():
    assert boundaries(np.array([1.0])).z[0] == pytest.approx(1.959964, abs=1e-5)
    assert required_events(0.75) == pytest.approx(379.35, abs=0.05)  # Schoenfeld
    assert fixed_power(379.35, 0.75) == pytest.approx(0.80, abs=1e-3)


def test_sequential_power_against_monte_carlo():
    t = np.arange(1, 9) / 8
    b = boundaries(t)
    drift = -np.log(0.75) * np.sqrt(300 / 4)
    z = canonical_looks(t, drift, 100_000, seed=3)
    mc = (first_crossing(z, b.z) > 0).mean()
    assert sequential_power(t, 0.75, 300) == pytest.approx(mc, abs=4 * np.sqrt(0.25 / 1e5))
    assert detectable_hr(400, looks=24) == pytest.approx(0.75, abs=0.01)


def test_null_error_over_24_looks_is_controlled_but_naive_is_not():
    t = np.linspace(0.3, 1.0, 24)
    z = canonical_looks(t, 0.0, 40_000, seed=5)
    rate = (first_crossing(z, boundaries(t).z) > 0).mean()
    naive = (first_crossing(z, np.full(24, 1.959964)) > 0).mean()
    se = np.sqrt(0.05 * 0.95 / 40_000)
    assert abs(rate - 0.05) < 4 * se
    assert naive > 0.08


def test_bad_information_fractions_are_refused():
    with pytest.raises(ValueError):
        boundaries(np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        spent(0.5, 0.05, "haybittle")
