"""Strict number parsing shared by the flag parser and the file readers.

Python's float() and int() accept more than a C strtod/strtol with an end check would
("1_000", "infinity", surrounding blanks), so both engines could disagree on what a number is.
We accept plain decimal literals only and refuse non-finite values: no flag or file field of
minibragg has a meaning for them.
"""

from __future__ import annotations

import math
import re

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")

FLOAT_PATTERN = _FLOAT_RE.pattern
INT_PATTERN = _INT_RE.pattern


def parse_float(text: str) -> float | None:
    """The value of a decimal literal, or None when `text` is not one (or is not finite)."""
    if not _FLOAT_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_int(text: str) -> int | None:
    """The value of an integer literal, or None when `text` is not one."""
    return int(text) if _INT_RE.fullmatch(text) else None
