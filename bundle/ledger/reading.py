"""What the ledger entry and the export read from a manifest dict: which engines, which
tolerance, whether a chain factor differs. Shared by fixplan and export, so neither reaches into
the other's private helpers."""

from __future__ import annotations

from typing import Any, Mapping

from bundle.analysis.numbers import finite_number
from bundle.model.records import Tolerance

DEFAULT_RTOL = Tolerance().rtol


def engines(manifest: Mapping[str, Any]) -> tuple[str, str]:
    """(reference, candidate) engine names; the manifest's engine list, then c/py, as fallback."""
    res = manifest.get("result") or {}
    eng = res.get("engines") or {}
    names = [e.get("name") for e in manifest.get("engines") or [] if isinstance(e, dict)]
    ref = eng.get("ref") or (names[0] if names else "c")
    cand = eng.get("cand") or (names[1] if len(names) > 1 else "py")
    return str(ref), str(cand)


def rel(a: Any, b: Any) -> float | None:
    """|a - b| / max(|a|, |b|) of two finite numbers; None when either is not one."""
    if not (finite_number(a) and finite_number(b)):
        return None
    m = max(abs(a), abs(b))
    return 0.0 if m == 0 else abs(a - b) / m


def tolerance(manifest: Mapping[str, Any], key: str) -> float:
    """The rtol the spec gave ``key`` (its own, else the spec's, else the default)."""
    tol = (manifest.get("spec") or {}).get("tolerance") or {}
    per = (tol.get("keys") or {}).get(key) or {}
    r = per.get("rtol", tol.get("rtol", DEFAULT_RTOL))
    return float(r) if finite_number(r) else DEFAULT_RTOL


def factor_differs(f: Mapping[str, Any], ref: str, cand: str, manifest: Mapping[str, Any]) -> bool:
    """A chain factor differs as recorded: every chain factor of a bundle carries ``matches``
    (the schema requires it)."""
    return not f["matches"]
