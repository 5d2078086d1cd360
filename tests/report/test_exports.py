"""Exported estimates: counts published, estimates from too few events withheld."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import load_config
from pipeline.report.exports import published_estimates
from pipeline.settings import PROJECT_ROOT

CFG = load_config(PROJECT_ROOT / "config" / "evaluation.yaml")


def test_thin_estimates_withheld_and_counts_published():
    est = pd.DataFrame({
        "analysis": ["a", "b", "dose"], "measure": ["hr", "hr", "hr_per_5_sessions"],
        "arm": ["", "", ""], "estimate": [0.8, 0.5, 0.9], "lower": [0.6, 0.2, 0.8],
        "upper": [1.0, 1.2, 1.0], "p": [0.04, 0.1, 0.02], "unit": "ratio",
        "n_treated": [120, 40, 150], "n_comparison": [900, 35, 0],
        "events_treated": [30, 7, 45], "events_comparison": [200, 12, 0],
        "note": ["3 units trimmed; caliper 0.2", "", "effective sizes 150 / 12"]})
    out = published_estimates([est, None], CFG).set_index("analysis")
    assert out.loc["a", "estimate"] == 0.8 and out.loc["dose", "estimate"] == 0.9
    assert np.isnan(out.loc["b", ["estimate", "lower", "upper", "p"]].astype(float)).all()
    assert out.loc["b", "events_treated"] == "<10"
    assert out.loc["a", "n_comparison"] == "900" and out.loc["dose", "n_comparison"] == "0"
    assert out.loc["a", "note"] == "<10 units trimmed; caliper 0.2"
    assert out.loc["dose", "note"] == "effective sizes 150 / 12"
