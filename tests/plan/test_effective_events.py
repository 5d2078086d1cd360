"""Information of a weighted comparison: events a one-to-one comparison would need."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.plan.store import effective_events


def test_a_one_to_one_comparison_keeps_its_event_count():
    se = 2 / np.sqrt(400)  # Schoenfeld: var(log HR) = 4 / events with 1:1 allocation
    lo, hi = np.exp(np.log(0.8) - 1.959964 * se), np.exp(np.log(0.8) + 1.959964 * se)
    assert effective_events(lo, hi, fallback=-1) == pytest.approx(400, rel=1e-6)


def test_a_wider_interval_is_less_information_and_no_interval_falls_back():
    assert effective_events(0.5, 1.2, 0) < effective_events(0.7, 0.95, 0)
    assert effective_events(np.nan, 1.0, 123.0) == 123.0
    assert effective_events(0.0, 1.0, 7.0) == 7.0
