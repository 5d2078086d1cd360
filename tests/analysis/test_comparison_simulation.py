"""Quick version of the simulation study (benchmarks/simulation_study.py): on confounded
synthetic extracts with a known marginal effect, adjustment removes the naive estimate's bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.simulation_study import replicate, summarise

pytestmark = pytest.mark.slow  # make test-slow: a simulation over many worlds

@pytest.fixture(scope="module")
def replicates() -> pd.DataFrame:
    return pd.DataFrame([replicate("effect", i, 4000) for i in range(4)])


def test_matched_and_weighted_are_closer_to_the_truth_than_naive(replicates):
    truth = replicates["true_log_hr"].mean()
    assert -0.35 < truth < -0.2  # marginal HR in the treated, near the conditional 0.75
    bias = {e: replicates[f"{e}_log_hr"].mean() - truth
            for e in ("naive", "matched", "weighted")}
    assert bias["naive"] > 0.1  # referral of higher-risk people hides the benefit
    assert abs(bias["matched"]) < bias["naive"]
    assert abs(bias["weighted"]) < bias["naive"]
    table = summarise(replicates).set_index("estimator")
    assert table.loc["naive", "bias"] == pytest.approx(bias["naive"])


def test_large_extract_recovers_the_truth():
    rep = replicate("effect", 99, 12000)
    truth = rep["true_log_hr"]
    for est in ("matched", "weighted"):
        assert rep[f"{est}_lower"] < truth < rep[f"{est}_upper"], est
        assert abs(rep[f"{est}_log_hr"] - truth) < 0.12, est
    assert rep["naive_log_hr"] - truth > 0.1
    assert np.isfinite(rep["true_log_hr_matched"])
