"""Treated-vs-comparison analysis: propensity scores, matching, weighting, balance, effects.

Pure functions on pandas/numpy inputs (no Dagster, no I/O). See each module's docstring
for the exact definitions (MatchIt-compatible balance statistics and matching rules).
"""

from .balance import balance_table, flag_imbalanced, love_plot_data
from .bootstrap import weighted_km_at, weighted_km_bootstrap
from .effects import (
    EffectEstimate,
    evalue,
    ipw_ate,
    minimum_detectable_hr,
    natural_frequencies,
    risk_difference_ratio,
)
from .matching import MatchResult, match_from_groups, match_nearest, matching_weights
from .propensity import (
    DesignSpec,
    PropensityFitError,
    PropensityModel,
    common_support,
    fit_propensity,
    overlap_summary,
    trim_common_support,
)
from .weighting import effective_sample_size, ipw_weights

__all__ = [
    "DesignSpec",
    "EffectEstimate",
    "MatchResult",
    "PropensityFitError",
    "PropensityModel",
    "balance_table",
    "common_support",
    "effective_sample_size",
    "evalue",
    "flag_imbalanced",
    "fit_propensity",
    "ipw_ate",
    "ipw_weights",
    "love_plot_data",
    "match_from_groups",
    "match_nearest",
    "matching_weights",
    "minimum_detectable_hr",
    "natural_frequencies",
    "overlap_summary",
    "risk_difference_ratio",
    "trim_common_support",
    "weighted_km_at",
    "weighted_km_bootstrap",
]
