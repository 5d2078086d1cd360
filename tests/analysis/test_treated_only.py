"""Completers vs non-completers and dose from a landmark recover a known completion effect."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.treated_only import landmark_frame, treated_only_estimates
from tests.analysis.test_truth_recovery import CFG, build


@pytest.mark.slow  # make test-slow: builds and analyses a 6,000-person world
def test_completion_effect_recovered_from_landmark(tmp_path):
    # completers' hazard x0.45 after index, non-completers' x0.9: ratio 0.5 (conditional)
    con, eid, truth = build(tmp_path, n_people=30000, seed=5, confounding=0.0, true_hr=0.9,
                            completer_hr=0.45)
    frame = landmark_frame(con, eid, CFG)
    assert (frame["calendar_days"] > CFG.landmark_days).all()
    assert frame["sessions_by_landmark"].between(1, 20).all()
    est = treated_only_estimates(frame, CFG).set_index("measure")
    hr, lo, hi = est.loc["hr_completers", ["estimate", "lower", "upper"]]
    assert lo < 0.5 < hi and abs(np.log(hr / 0.5)) < 0.3
    # more sessions, lower hazard (completers attend more)
    assert est.loc["hr_per_5_sessions", "estimate"] < 1
