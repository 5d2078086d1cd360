"""Follow-up windows in days: the one rule shared by the cohort SQL and the analyses."""

from __future__ import annotations


def month_days(months: int) -> int:
    """Days in a follow-up window of ``months``: a year is 365 days and a month 365/12 days,
    rounded down (12 → 365, 24 → 730, 6 → 182). The one rule for every window: the cohort SQL,
    Kaplan-Meier read-offs, RMST horizons and figures all use it. A 52-week follow-up (364
    days) is therefore one day short of a 12-month window."""
    return months * 365 // 12
