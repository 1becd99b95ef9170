"""manifest.json: records and results turned into the bundle's plain-data record (pure).

The shapes are documented in docs/bundle-format.md and checked by bundle/manifest.schema.json.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from bundle import __version__
from bundle.analysis.compare import json_float, summary_json
from bundle.model.records import (FORMAT_VERSION, CaptureResult, CommandRecord, Comparison, FileDigest,
                            ImageMetrics)


def file_data(d: FileDigest | None, with_root: bool = True) -> dict | None:
    if d is None:
        return None
    data = {"path": d.path, "size": d.size, "sha256": d.sha256}
    if with_root:
        data["root"] = d.root
    return data


def command_data(c: CommandRecord) -> dict:
    return {
        "step": c.step, "role": c.role, "engine": c.engine, "argv": list(c.argv), "cwd": c.cwd,
        "env": dict(c.env), "start_utc": c.start_utc, "end_utc": c.end_utc, "wall_s": c.wall_s,
        "exit_code": c.exit_code, "timed_out": c.timed_out, "error": c.error,
        "peak_rss_kb": c.peak_rss_kb,
        "stdout": file_data(c.stdout, with_root=False), "stderr": file_data(c.stderr, with_root=False),
        "inputs": [file_data(i) for i in c.inputs], "outputs": [file_data(o) for o in c.outputs],
    }


def metrics_json(m: ImageMetrics | None) -> dict | None:
    if m is None:
        return None
    def stats(s):
        return {"total": json_float(s.total), "mean": json_float(s.mean), "max": json_float(s.max),
                "max_slow": s.max_slow, "max_fast": s.max_fast,
                "traced_value": json_float(s.traced_value)}
    return {
        "slow": m.slow, "fast": m.fast,
        "pearson": json_float(m.pearson), "sum_ratio": json_float(m.sum_ratio),
        "rmse": json_float(m.rmse), "max_abs_diff": json_float(m.max_abs_diff),
        "peaks_matched": m.peaks_matched,
        "peaks": {m.ref_engine: m.peaks_ref, m.cand_engine: m.peaks_cand},
        "mean_peak_distance": json_float(m.mean_peak_distance),
        "correlation_pass": m.correlation_pass, "peak_distance_pass": m.peak_distance_pass,
        m.ref_engine: stats(m.ref), m.cand_engine: stats(m.cand),
    }


def empty_comparison_json() -> dict:
    return {"first_divergence": None, "first_chain_divergence": None,
            "chain": {"factors": [], "product_of_ratios": None, "final_ratio": None,
                      "consistency": {}, "attribution": None},
            "missing": {}, "keys_compared": 0,
            # bundle.analysis.roots' fields, empty: nothing was compared
            "roots": [], "amplified": [], "carried": {}, "min_rtol": {}, "key_graph": None}


def result_json(result: CaptureResult, bundle_path: str | None) -> dict:
    """The object ``--json`` prints and manifest.json's ``result`` holds."""
    cmp: Comparison | None = result.comparison
    data: dict[str, Any] = {"verdict": result.verdict, "status": result.status}
    if bundle_path is not None:
        data["bundle"] = bundle_path
    data.update(summary_json(cmp, result.roots) if cmp else empty_comparison_json())
    names = [e.engine for e in result.engines]
    data["engines"] = ({"ref": cmp.ref_engine, "cand": cmp.cand_engine} if cmp
                       else {"ref": names[0] if names else None,
                             "cand": names[1] if len(names) > 1 else None})
    data["metrics"] = metrics_json(result.metrics)
    data["failed_commands"] = [
        {"step": c.step, "exit_code": c.exit_code, "timed_out": c.timed_out, "error": c.error}
        for c in result.commands if not c.ok
    ]
    data["notes"] = list(result.notes)
    return data


def target_data(name: str, profile: Mapping, repo: str, git: Mapping,
                host_repo: str | None = None) -> dict:
    """The manifest's ``target``: which layout, from which checkout, at which commit (``git``:
    repo_commit, repo_dirty, repo_diff_sha256); ``host_repo`` when run inside a container."""
    data = {"name": name, "profile": dict(profile), "repo": repo, **git}
    if host_repo:
        data["host_repo"] = host_repo
    return data


def arguments_data(shared: Sequence[str], sha256: str, engines: Mapping[str, Sequence[str]],
                   templates: Mapping[str, Sequence[str]], roots: Mapping[str, str | None]) -> dict:
    """The manifest's ``arguments``: the shared list, each engine's argv, each step's template
    and the roots its placeholders were filled from."""
    return {"shared": list(shared), "sha256": sha256,
            "engines": {k: list(v) for k, v in engines.items()},
            "templates": {k: list(v) for k, v in templates.items()}, "roots": dict(roots)}


def build_manifest(result: CaptureResult, *, target: Mapping, arguments: Mapping,
                   engines: Sequence[Mapping], inputs: Sequence[Mapping],
                   files: Sequence[FileDigest], bundle_path: str,
                   replay_of: str | None = None, extra: Mapping | None = None) -> dict:
    manifest = {
        "format": "nb-evidence-bundle",
        "format_version": FORMAT_VERSION,
        "tool": {"name": "nb-evidence", "version": __version__},
        "bundle_id": result.bundle_id,
        "created_utc": result.created_utc,
        "status": result.status,
        "replay_of": replay_of,
        "spec": dict(result.spec),
        "target": dict(target),
        "arguments": dict(arguments),
        "engines": list(engines),
        "environment": dict(result.environment),
        "commands": [command_data(c) for c in result.commands],
        "inputs": list(inputs),
        "result": result_json(result, bundle_path),
        "notes": list(result.notes),
        "reproduce": result.reproduce,
        "files": [file_data(f, with_root=False) for f in files],
    }
    if extra:
        manifest.update(extra)
    return _finite(manifest)


def _finite(value: Any) -> Any:
    """JSON has no nan/inf: any that slipped through become strings, as json_float does."""
    if isinstance(value, float) and not math.isfinite(value):
        return json_float(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
