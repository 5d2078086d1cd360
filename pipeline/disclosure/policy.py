"""Disclosure-control policy: one immutable object holding every SDC setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


def _check_int(name: str, value: Any, minimum: int) -> None:
    """Raise a clear error unless ``value`` is a plain int >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"disclosure policy: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"disclosure policy: {name} must be >= {minimum}, got {value}")


def _check_label(name: str, value: Any) -> None:
    """Raise unless ``value`` is a non-empty string (labels must be visible in the output)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"disclosure policy: {name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class DisclosurePolicy:
    """Statistical disclosure control settings applied to every published number.

    Counts in 1..threshold-1 (and 0 if ``suppress_zeros``) are suppressed; labels and the
    minimum events for a subgroup estimate default from ``threshold`` when left as None.
    """

    threshold: int = 10
    suppress_zeros: bool = False
    rounding_base: int | None = None
    suppressed_label: str | None = None
    secondary_label: str = "[c]"
    withheld_label: str = "\u2013"
    min_events_for_estimate: int | None = None

    def __post_init__(self) -> None:
        _check_int("threshold", self.threshold, 1)
        if not isinstance(self.suppress_zeros, bool):
            raise TypeError(
                f"disclosure policy: suppress_zeros must be a bool, got {self.suppress_zeros!r}"
            )
        if self.rounding_base is not None:
            _check_int("rounding_base", self.rounding_base, 2)
        if self.suppressed_label is None:
            object.__setattr__(self, "suppressed_label", f"<{self.threshold}")
        if self.min_events_for_estimate is None:
            object.__setattr__(self, "min_events_for_estimate", self.threshold)
        _check_int("min_events_for_estimate", self.min_events_for_estimate, 0)
        for name in ("suppressed_label", "secondary_label", "withheld_label"):
            _check_label(name, getattr(self, name))
        if self.secondary_label == self.suppressed_label:
            raise ValueError(
                "disclosure policy: secondary_label must differ from suppressed_label, "
                "otherwise complementary cells (>= threshold) would be shown as small counts"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> DisclosurePolicy:
        """Build a policy from config (e.g. a YAML ``disclosure:`` block); unknown keys raise."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise TypeError(f"disclosure policy: expected a mapping, got {type(mapping).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise ValueError(
                f"disclosure policy: unknown setting(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return cls(**dict(mapping))

    @property
    def smallest_suppressed(self) -> int:
        """Smallest count that is primary-suppressed (0 when zeros are suppressed, else 1)."""
        return 0 if self.suppress_zeros else 1
