"""Checks that a published document (numbers.json, the funder PDF) holds no non-number.

Issue 9's rule: every published estimate is a finite number, or is absent with a reason. These
helpers return human-readable problems (JSON paths and PDF phrases, never data values beyond the
offending token) so that a failing end-to-end test says exactly what leaked.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

# phrases a reader must never see: non-numbers, blanks standing for numbers, degenerate CIs
PDF_FORBIDDEN = {
    "nan": re.compile(r"\bnan\b", re.IGNORECASE),
    "inf": re.compile(r"\binf(inity)?\b|∞", re.IGNORECASE),
    "None": re.compile(r"\bNone\b"),
    "zero estimate with zero bound": re.compile(r"\b0\.00 \(0\.00"),
    "blank months": re.compile(r"[–-] months"),
    "blank per 100": re.compile(r"per 100:?\s*[–-](\s|$)"),
    "blank interval": re.compile(r"[–-] to [–-]"),
}
REASON_KEY = re.compile(r"reason|status|note|verdict", re.IGNORECASE)
REASON_TEXT = re.compile(r"withheld|not.estimable|suppressed|too few|insufficient|no events|"
                         r"could not|not shown|<\d+", re.IGNORECASE)
NON_NUMBER_TEXT = re.compile(r"^\s*[-+]?(nan|inf(inity)?)\s*%?\s*$|\bnan\b", re.IGNORECASE)


def _bad_constant(token: str) -> float:
    raise ValueError(f"non-standard JSON constant {token}")


def _has_reason(obj: dict) -> bool:
    """A dict explains its missing values if it names a reason or says why in a string field."""
    return any((REASON_KEY.search(k) and isinstance(v, str) and v.strip())
               or (isinstance(v, str) and REASON_TEXT.search(v)) for k, v in obj.items())


def numbers_problems(path: Path) -> list[str]:
    """Non-finite numbers, 'nan' strings and unexplained nulls in numbers.json, by JSON path."""
    text = path.read_text()
    problems = []
    try:
        doc = json.loads(text, parse_constant=_bad_constant)
    except ValueError as exc:
        return [f"numbers.json is not strict JSON: {exc}"]

    def walk(node, where: str, parent: dict | None) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}", node)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]", parent)
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append(f"{where}: non-finite number")
        elif isinstance(node, str) and NON_NUMBER_TEXT.search(node):
            problems.append(f"{where}: text {node.strip()[:40]!r}")
        elif node is None and not (parent is not None and _has_reason(parent)):
            problems.append(f"{where}: null without a reason")

    walk(doc, "$", None)
    return problems


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def pdf_problems(path: Path) -> list[str]:
    """Forbidden phrases in the PDF's text, each with a few words of context."""
    text = pdf_text(path)
    problems = []
    for name, pattern in PDF_FORBIDDEN.items():
        for m in list(pattern.finditer(text))[:3]:
            context = " ".join(text[max(0, m.start() - 40): m.end() + 20].split())
            problems.append(f"PDF {name}: …{context}…")
    return problems
