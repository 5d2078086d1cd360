"""Canary identifiers: one value of every kind the identifier guard refuses, in several letter
cases, with distinctive text so that a byte search finds any copy of them anywhere."""

from __future__ import annotations

# kind -> canary values (each unique enough to search for in raw bytes)
CANARIES: dict[str, tuple[str, ...]] = {
    "e-mail addresses": ("zqcanary.harker@example.org", "ZQCANARY.HARKER@EXAMPLE.ORG"),
    "phone numbers": ("07700 900461", "+44 7700 900462"),
    "NHS numbers": ("943 476 5919",),
    "PNC numbers": ("12/345678Q",),
    "national insurance numbers": ("AB123456C", "ab 12 34 56 c"),
    "postcodes": ("SW1A 1ZQ", "sw1a 1zq"),
    "addresses": ("12 Zqcanary Road", "12 ZQCANARY ROAD"),
    "full dates of birth": ("14/03/1985", "1985-3-14", "14.03.85"),
    "names": ("Zqharker Smithcanary", "zqharker smithcanary", "ZQHARKER SMITHCANARY",
              "SMITHCANARY, Zqharker"),
}


def all_canaries() -> list[tuple[str, str]]:
    """(kind, value) for every canary."""
    return [(kind, v) for kind, values in CANARIES.items() for v in values]


def search_terms() -> list[bytes]:
    """Byte strings whose presence anywhere means a canary leaked (case-folded search)."""
    terms = {v.lower().encode() for _, v in all_canaries()}
    return sorted(terms | {b"zqcanary", b"zqharker", b"smithcanary"})
