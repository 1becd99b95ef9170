"""The numeric rule every comparison uses: ratio, relative and absolute difference, the match
rule, and JSON-safe floats (formulas in bundle.analysis.compare's docstring).

Its own module so that compare and chain both build on it without importing each other.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping

from bundle.model.records import Tolerance

NO_OVERRIDES: Mapping[str, Tolerance] = MappingProxyType({})


def finite_number(x: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def ratio(cand: float, ref: float) -> float:
    """cand / ref with IEEE 754 semantics: ±inf when ref is ±0 and cand is not 0, nan for 0/0."""
    if ref == 0.0:
        if cand == 0.0 or math.isnan(cand):
            return math.nan
        return math.copysign(math.inf, cand) * math.copysign(1.0, ref)
    return cand / ref


def rel_diff(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), symmetric, 0 for identical values (nan and inf included)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(a) or math.isinf(b):
        return 2.0 if math.isinf(a) and math.isinf(b) else 1.0
    scale = max(abs(a), abs(b))
    diff = abs(a - b)
    if math.isinf(diff):  # both finite but their difference overflows: scale first
        return abs(a / scale - b / scale)
    return diff / scale


def abs_diff(a: float, b: float) -> float:
    """|a - b|, 0 for identical values (nan and inf included)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b)


def values_match(ref: float, cand: float, tol: Tolerance) -> bool:
    """The match rule of this module's docstring."""
    if ref == cand or (math.isnan(ref) and math.isnan(cand)):
        return True  # both 0 (of either sign), the same infinity, equal finite values, both nan
    return abs_diff(ref, cand) <= tol.atol or rel_diff(ref, cand) <= tol.rtol


def json_float(x: float | None) -> float | str | None:
    """A float made JSON-safe: finite floats as they are, nan/inf as the strings "nan", "inf",
    "-inf"; None (a value that side does not have) stays None."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x
