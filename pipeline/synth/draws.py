"""Vectorised drawing and formatting helpers shared by the synthetic generator's modules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

DAY0 = np.datetime64("1970-01-01", "D")


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (the generator works in integer days)."""
    return int((np.datetime64(d, "D") - DAY0).astype(int))


def to_date(days: np.ndarray) -> np.ndarray:
    """Integer days since 1970 → datetime64[D] (NaN-safe via masked NaT)."""
    out = np.full(days.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnan(days)
    out[ok] = DAY0 + days[ok].astype(np.int64)
    return out


def chars_to_keys(prefix: str, body: np.ndarray) -> np.ndarray:
    """Keys from a (n, width) array of single characters, prefixed (vectorised, no loops)."""
    n, width = body.shape
    chars = np.empty((n, len(prefix) + width), dtype="<U1")
    chars[:, : len(prefix)] = list(prefix)
    chars[:, len(prefix):] = body
    return chars.view(f"<U{len(prefix) + width}").ravel().astype(object)


HEX = np.array(list("0123456789ABCDEF"))


def hex_keys(rng: np.random.Generator, prefix: str, n: int) -> np.ndarray:
    """Unique pseudonymised-looking keys: prefix + 16 upper-case hex digits."""
    vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    while not pd.Index(vals).is_unique:  # collisions are astronomically rare; redraw if any
        vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    nibbles = (vals[:, None] >> (4 * np.arange(15, -1, -1))) & 15
    return chars_to_keys(prefix, HEX[nibbles])


def seq_keys(prefix: str, n: int, width: int, start: int = 1) -> np.ndarray:
    """Sequential keys: prefix + zero-padded number."""
    nums = np.arange(start, start + n, dtype=np.int64)
    digits = (nums[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10
    return chars_to_keys(prefix, HEX[digits])


def choice(rng: np.random.Generator, values, probs, n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs)]


def weibull_cum(t: np.ndarray, shape: float) -> np.ndarray:
    return np.power(np.maximum(t, 0.0), shape)


def weibull_inv(h: np.ndarray, shape: float) -> np.ndarray:
    return np.power(np.maximum(h, 0.0), 1.0 / shape)


def over(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, infinite where den is 0 (nobody offends: the first event never comes)."""
    return np.divide(num, den, out=np.full(np.shape(num), np.inf), where=den > 0)
