"""``make test`` relies on ``--dist loadgroup`` keeping each module (and every test of the
shared end-to-end run) on one xdist worker, so that no whole-pipeline fixture is built twice.
pytest 9.2 renamed the attribute xdist 3.8 writes the group into, and the grouping silently
stopped (the end-to-end run was then built on both workers): this test notices that."""

from __future__ import annotations

import os

import pytest


def test_tests_reach_the_scheduler_with_their_group(request):
    if not os.environ.get("PYTEST_XDIST_WORKER") or not request.config.getvalue("loadgroup"):
        pytest.skip("only meaningful under pytest -n N --dist loadgroup (make test)")
    assert request.node.nodeid.endswith(f"@{request.module.__name__}"), request.node.nodeid
