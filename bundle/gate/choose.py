"""Which spec (or suite) the gate captures, said in one sentence.

``--capture SPEC`` / ``--suite SUITE`` win. Otherwise the baseline's own: a suite baseline's
suite file; a bundle's (or archived manifest's) spec file, found among the specs shipped in
``manifests/`` (this checkout's and the repo's) by its recorded sha256; failing that the spec the
manifest recorded, parsed back, but only when it has no prepare command (someone else's
command is not run here: pass --capture SPEC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from bundle.model.errors import UserError
from bundle.model.hashing import sha256_file
from bundle.replay import SHIPPED_SPECS, shipped_spec_files


@dataclass(frozen=True)
class Choice:
    kind: str  # "spec-file" | "recorded-spec" | "suite"
    path: Path | None  # the spec or suite file (None: the recorded spec)
    why: str
    manifest: Mapping[str, Any] | None = None  # for "recorded-spec"


def shipped_spec(sha256: str | None, repo: Path | None) -> Path | None:
    """A spec file under manifests/ (the repo's, then this checkout's) with this sha256: the
    same shipped specs replay trusts (bundle.replay.shipped_spec_files)."""
    if not sha256:
        return None
    dirs = ((repo / "manifests",) if repo else ()) + (SHIPPED_SPECS,)
    return shipped_spec_files(*dirs).get(sha256)


def choose(baseline_kind: str, baseline: Mapping[str, Any], capture: str | None, suite: str | None,
           repo: Path | None) -> Choice:
    if capture and suite:
        raise UserError("--capture and --suite exclude each other")
    if capture:
        return Choice("spec-file", Path(capture), f"capturing --capture {capture}")
    if suite:
        return Choice("suite", Path(suite), f"running --suite {suite}")
    if baseline_kind == "suite":
        source = baseline.get("source") or {}
        path = Path(str(source.get("path")))
        if not path.is_file() or sha256_file(path)[1] != source.get("sha256"):
            raise UserError(f"baseline suite's file {path} is gone or changed; pass --suite SUITE")
        return Choice("suite", path, f"running the baseline's suite file {path} (sha256 matches)")
    spec = baseline.get("spec") or {}
    source = spec.get("source") or {}
    found = shipped_spec(source.get("sha256"), repo)
    if found is not None:
        return Choice("spec-file", found, f"capturing the baseline's spec {found} (sha256 "
                      f"{str(source.get('sha256'))[:12]} matches)")
    if (spec.get("inputs") or {}).get("prepare"):
        raise UserError(f"baseline {baseline.get('bundle_id')}: its spec file is not shipped here and "
                        "its prepare command is not run from a manifest; pass --capture SPEC")
    return Choice("recorded-spec", None, f"capturing the spec recorded in baseline "
                  f"{baseline.get('bundle_id')} (its file is not shipped here)", baseline)
