"""Statistical disclosure control for every number that leaves the warehouse.

Counts below the policy threshold are suppressed, tables get complementary suppression so no
suppressed cell can be recovered from its totals, and rates, survival curves and subgroup
estimates built on small counts are withheld. See ``tables`` for the algorithm and its limits.
"""

from pipeline.disclosure.checks import (
    assert_no_small_counts,
    check_published_document,
    find_small_counts_in_text,
)
from pipeline.disclosure.counts import (
    is_suppressed,
    protect_rate,
    publish_count,
    publish_counts,
    round_to_base,
)
from pipeline.disclosure.estimates import cut_survival_curve, withhold_small_estimates
from pipeline.disclosure.policy import DisclosurePolicy
from pipeline.disclosure.tables import ProtectedTable, protect_table

__all__ = [
    "DisclosurePolicy",
    "ProtectedTable",
    "assert_no_small_counts",
    "check_published_document",
    "cut_survival_curve",
    "find_small_counts_in_text",
    "is_suppressed",
    "protect_rate",
    "protect_table",
    "publish_count",
    "publish_counts",
    "round_to_base",
    "withhold_small_estimates",
]
