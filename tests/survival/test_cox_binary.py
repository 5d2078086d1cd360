"""The Cox log hazard ratio from per-time sums, for many weightings at once, is ``fit_cox``'s
estimate (Efron ties, case weights) for each of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.survival import fit_cox
from pipeline.survival.cox_binary import binary_log_hr, time_sums


def _data(seed: int, n: int = 500):
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, n)
    time = np.ceil(rng.exponential(200 * np.exp(0.5 * treated)))  # whole days: many ties
    event = (rng.random(n) < 0.7).astype(int)
    return pd.DataFrame({"time_days": time, "event": event, "treated": treated})


def _sums(frame: pd.DataFrame, weights: np.ndarray):
    uniq, code = np.unique(frame["time_days"].to_numpy(float), return_inverse=True)
    parts = [time_sums(code, uniq.size, frame["treated"].to_numpy(), frame["event"].to_numpy(),
                       w) for w in weights]
    return tuple(np.stack(p) for p in zip(*parts, strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_weighting_gets_fit_cox_s_estimate(seed: int):
    frame = _data(seed)
    rng = np.random.default_rng(seed + 10)
    weights = rng.gamma(2.0, 0.5, (6, len(frame)))
    weights[:, ::7] = 0.0  # rows weighted out, as a bootstrap resample does
    weights[1] = np.bincount(rng.integers(0, len(frame), len(frame)), minlength=len(frame))
    got = binary_log_hr(*_sums(frame, weights))
    for w, beta in zip(weights, got, strict=True):
        keep = w > 0
        ref = fit_cox(frame[keep].assign(_w=w[keep]), "time_days", "event", ["treated"],
                      weights_col="_w", compute_concordance=False)
        assert beta == pytest.approx(float(ref.coef["treated"]), abs=1e-8)
    assert np.ptp(got) > 0.01  # the weightings differ, and so do their estimates


def test_not_estimable_weightings_are_nan_and_the_others_are_not():
    frame = _data(4)
    n = len(frame)
    treated = frame["treated"].to_numpy()
    weights = np.stack([np.ones(n), np.where(treated == 1, 0.0, 1.0), np.ones(n)])
    exits, events, tied = _sums(frame, weights)
    events[2] = 0.0  # no event in the third
    tied[2] = 0.0
    got = binary_log_hr(exits, events, tied)
    assert np.isfinite(got[0]) and np.isnan(got[1]) and np.isnan(got[2])


def test_monotone_likelihood_is_nan():
    frame = _data(5)
    frame["event"] = np.where(frame["treated"] == 1, 0, frame["event"])  # no treated event
    assert np.isnan(binary_log_hr(*_sums(frame, np.ones((1, len(frame))))))[0]


def test_weightings_fitted_in_groups_give_the_same_estimates(monkeypatch):
    from pipeline.survival import cox_binary

    frame = _data(6)
    weights = np.random.default_rng(7).gamma(2.0, 0.5, (5, len(frame)))
    sums = _sums(frame, weights)
    together = binary_log_hr(*sums)
    monkeypatch.setattr(cox_binary, "TERM_BUDGET", 300)  # about one weighting per group
    apart = binary_log_hr(*sums)
    np.testing.assert_allclose(apart, together, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(together))
