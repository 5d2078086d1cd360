"""The bootstrap's fast log hazard ratio is the same estimate as the full Cox fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.weighted_results import weighted_log_hr
from pipeline.survival import fit_cox


def _frame(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, n)
    time = np.ceil(rng.exponential(300 * np.exp(0.4 * treated)))  # ties on whole days
    event = (rng.random(n) < 0.7).astype(int)
    return pd.DataFrame({"time_days": time, "event": event, "treated": treated})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_log_hr_equals_fit_cox_with_weights(seed: int):
    frame = _frame(seed)
    w = np.random.default_rng(seed + 10).gamma(2.0, 0.5, len(frame))
    w[::7] = 0.0  # rows weighted out, as a bootstrap resample does
    keep = w > 0
    full = fit_cox(frame[keep].assign(_w=w[keep]), "time_days", "event", ["treated"],
                   weights_col="_w", compute_concordance=False)
    assert weighted_log_hr(frame, w) == pytest.approx(float(full.coef["treated"]), abs=1e-9)


def test_fast_log_hr_is_nan_when_not_estimable():
    frame = _frame(4)
    assert np.isnan(weighted_log_hr(frame.assign(event=0), np.ones(len(frame))))
    assert np.isnan(weighted_log_hr(frame.assign(treated=1), np.ones(len(frame))))
