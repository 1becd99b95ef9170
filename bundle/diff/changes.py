"""What changed between two runs, read from their manifests: each item named (category and
name) and digested (sha256, or the value itself where it is a short version string). Pure.

Paths that only say where a run happened (its scratch directory, the repo's location, the
Python executable) are replaced by their root names before comparing, so two captures of the
same checkout show no change; the repository's commit and dirty-diff digest are compared.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, Iterable, Mapping

from bundle.diff.model import InputChange, TokenChange


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _placeholders(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    roots = (manifest.get("arguments") or {}).get("roots") or {}
    pairs = [(str(v), "{" + k + "}") for k, v in roots.items() if isinstance(v, str) and v]
    return sorted(pairs, key=lambda p: -len(p[0]))  # the longest path first


def _local(text: str, pairs: list[tuple[str, str]]) -> str:
    for path, name in pairs:
        text = text.replace(path, name)
    return text


def _sources(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(category, name) -> sha256 of every engine source read and binary built or used."""
    out = {}
    for cmd in manifest.get("commands") or ():
        for f in cmd.get("inputs") or ():
            if f.get("root") == "repo":
                out[("engine source", f["path"])] = f.get("sha256")
        if cmd.get("role") == "build":
            for f in cmd.get("outputs") or ():
                out[("engine binary", f"{cmd.get('engine') or cmd.get('step')}: {f['path']}")] = f.get("sha256")
    return out


def _env(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    pairs = _placeholders(manifest)
    return {("env", f"{cmd.get('step')} {k}"): _local(str(v), pairs)
            for cmd in manifest.get("commands") or () for k, v in (cmd.get("env") or {}).items()}


def _versions(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str | None]:
    env = manifest.get("environment") or {}
    versions = env.get("versions") or {}
    container = env.get("container") or {}
    target = manifest.get("target") or {}
    return {("tool", "nb-evidence"): (manifest.get("tool") or {}).get("version"),
            ("compiler", "gcc"): versions.get("gcc"),
            ("python", "python"): versions.get("python"),
            ("torch", "torch"): versions.get("torch"),
            ("container image", "image id"): container.get("image_id") if isinstance(container, dict) else None,
            ("repository", "commit"): target.get("repo_commit"),
            ("repository", "uncommitted changes (sha256)"): target.get("repo_diff_sha256")}


def _spec(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str | None]:
    spec = manifest.get("spec") or {}
    out = {("spec", f): _digest(spec.get(f)) for f in ("engines", "tolerance", "pixel", "inputs")}
    out[("spec", "target")] = (manifest.get("target") or {}).get("name")
    out[("spec", "file (sha256)")] = (spec.get("source") or {}).get("sha256")
    out[("arguments", "shared argument list (sha256)")] = (manifest.get("arguments") or {}).get("sha256")
    return out


def _inputs(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    return {("input", f["path"]): f.get("sha256") for f in manifest.get("inputs") or ()}


def facts(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str | None]:
    """Every (category, name) -> digest or value this module compares."""
    return {**_sources(manifest), **_spec(manifest), **_inputs(manifest), **_env(manifest),
            **_versions(manifest)}


def input_changes(before: Mapping[str, Any], after: Mapping[str, Any],
                  categories: Iterable[str]) -> tuple[InputChange, ...]:
    """The items that differ, in ``categories`` order, then by name."""
    fb, fa = facts(before), facts(after)
    rank = {c: i for i, c in enumerate(categories)}
    names = sorted(set(fb) | set(fa), key=lambda cn: (rank.get(cn[0], len(rank)), cn[1]))
    return tuple(InputChange(c, n, fb.get((c, n)), fa.get((c, n)))
                 for c, n in names if fb.get((c, n)) != fa.get((c, n)))


def token_diff(before: list[str], after: list[str]) -> tuple[TokenChange, ...]:
    """The shared argument lists' difference, token by token (positions 0-based, in A for a
    removed token and in B for an added one)."""
    out: list[TokenChange] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("replace", "delete"):
            out += [TokenChange("removed", i, before[i]) for i in range(i1, i2)]
        if op in ("replace", "insert"):
            out += [TokenChange("added", j, after[j]) for j in range(j1, j2)]
    return tuple(out)


def shared_arguments(manifest: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in (manifest.get("arguments") or {}).get("shared") or ()]
