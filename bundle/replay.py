"""Replay: re-run a bundle's recorded capture, write a NEW bundle naming the original, and judge
each output: ``identical`` (same bytes), ``within tolerance`` (same comparison code and the spec's
tolerances as the capture), or ``differs`` (with the first key that moved).

A manifest is a list of commands someone else may have written, so before anything runs:
- the plan is rebuilt from the recorded spec and the target profile (the built-in one, by name,
  never the copy inside the manifest) and every recorded command must be what that plan says;
- no argument may name a path outside the repo, the scratch area or the bundle (``..`` or a
  foreign absolute path).
``--trust`` lifts both checks and runs the recorded command templates as they are.

Logs are judged by their trace lines, never their bytes: timestamps and timings in stdout must
not turn a reproduced result into ``differs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bundle.capture.options import CaptureOptions
from bundle.pipeline import capture, trace_digest
from bundle.analysis.compare import compare_traces, summary_json
from bundle.model.errors import BundleError, UserError
from bundle.model.hashing import sha256_file
from bundle.analysis.metrics import load_float_image
from bundle.capture.plan import Plan, detector_shape, fill
from bundle.capture.runner import EventSink
from bundle.store.schema import load_manifest
from bundle.capture.spec import parse_spec
from bundle.capture.target import BUILTIN, load_target, parse_profile
from bundle.analysis.trace import parse_file


class ReplayRefused(UserError):
    """The manifest asks for something the target profile does not allow (no --trust)."""


@dataclass(frozen=True)
class ReplayOutcome:
    summary: dict
    bundle: Path | None


def _locate(source: Path) -> tuple[dict, Path | None]:
    manifest = load_manifest(source)
    bundle_dir = source if source.is_dir() else (source.parent if source.name == "manifest.json" else None)
    return manifest, bundle_dir


def _spec_and_target(manifest: Mapping[str, Any]):
    spec_data = {k: v for k, v in manifest["spec"].items() if k != "source" and v is not None}
    spec = parse_spec(spec_data, source=f"{manifest['bundle_id']}:spec")
    name = manifest["target"]["name"]
    if name in BUILTIN:
        target = load_target(name)
    else:
        profile = {k: v for k, v in manifest["target"]["profile"].items() if k != "source"}
        target = parse_profile(profile, source=f"{manifest['bundle_id']}:target")
    return spec, target


def _escapes(token: str) -> bool:
    if ".." in Path(token).parts or "/../" in token or token.endswith("/.."):
        return True
    for placeholder in ("{repo}", "{scratch}", "{python}"):
        if token.startswith(placeholder):
            return False
    return token.startswith("/")


def check_safety(manifest: Mapping[str, Any], plan: Plan) -> list[str]:
    """Why this manifest may not be replayed without --trust (empty: it may)."""
    problems = []
    recorded = manifest["arguments"].get("templates", {})
    planned = {s.name: list(s.argv_template) for s in plan.steps}
    for cmd in manifest["commands"]:
        step = cmd["step"]
        template = recorded.get(step)
        if template is None:
            problems.append(f"command {step} has no recorded template")
            continue
        if planned.get(step) != template:
            problems.append(f"command {step} runs {template[0]!r}, which is not what target "
                            f"{plan.target.name} runs for that step")
        for token in template:
            if _escapes(token):
                problems.append(f"command {step}: path {token!r} leaves the repo and scratch area")
                break
    for f in manifest["spec"].get("inputs", {}).get("files", []):
        if _escapes(f):
            problems.append(f"input {f!r} leaves the repo")
    return problems


def _recorded_plan(manifest: Mapping[str, Any], plan: Plan) -> Plan:
    """With --trust: the recorded templates, filled with this machine's roots."""
    roots = plan.roots()
    templates = manifest["arguments"]["templates"]
    steps = []
    for s in plan.steps:
        template = tuple(templates.get(s.name, s.argv_template))
        steps.append(replace(s, argv_template=template, argv=fill(template, {**roots, "build": "{scratch}/build"})))
    return replace(plan, steps=tuple(steps))


def _judge_image(orig: Path | None, orig_sha: str | None, new: Path, shape, tol) -> dict:
    _size, new_sha = sha256_file(new)
    if orig_sha == new_sha:
        return {"verdict": "identical"}
    if orig is None or not orig.is_file() or shape is None:
        return {"verdict": "differs", "detail": "original image not available; sha256 differs"}
    a = load_float_image(orig, *shape).astype(np.float64)
    b = load_float_image(new, *shape).astype(np.float64)
    diff = np.abs(b - a)
    bound = tol.atol + tol.rtol * np.maximum(np.abs(a), np.abs(b))
    bad = diff > bound
    if not bad.any():
        return {"verdict": "within tolerance", "max_abs_diff": float(diff.max())}
    s, f = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), a.shape)
    return {"verdict": "differs", "pixels_beyond_tolerance": int(bad.sum()),
            "worst_pixel": [int(s), int(f)], "original": float(a[s, f]), "replay": float(b[s, f])}


def judge(manifest: Mapping[str, Any], bundle_dir: Path | None, new_dir: Path, spec) -> dict:
    """Per engine: its trace and its image, original against replay."""
    new_manifest = json.loads((new_dir / "manifest.json").read_text())
    new_engines = {e["name"]: e for e in new_manifest["engines"]}
    outputs = []
    shape = detector_shape(spec.args)
    for orig in manifest["engines"]:
        name = orig["name"]
        new = new_engines.get(name)
        if new is None:
            outputs.append({"engine": name, "output": "trace", "verdict": "differs",
                            "detail": "engine did not run in the replay"})
            continue
        new_trace = parse_file(new_dir / new["log"], new["prefix"]) if (new_dir / new["log"]).is_file() else None
        orig_log = bundle_dir / orig["log"] if bundle_dir else None
        orig_trace = None
        if orig_log is not None and orig_log.is_file():
            try:
                orig_trace = parse_file(orig_log, orig["prefix"])
            except UserError:
                orig_trace = None
        orig_digest = orig.get("trace_sha256") or trace_digest(orig_trace)
        entry: dict[str, Any] = {"engine": name, "output": "trace"}
        if orig_digest is not None and orig_digest == trace_digest(new_trace):
            entry["verdict"] = "identical"
        elif orig_trace is None or new_trace is None:
            entry["verdict"] = "differs"
            entry["detail"] = ("original trace not available, only its digest" if orig_trace is None
                               else "the replay printed no trace")
        else:
            cmp = compare_traces(orig_trace, new_trace, "original", "replay", spec.tolerance, spec.per_key)
            moved = summary_json(cmp)["first_divergence"]
            entry["verdict"] = "within tolerance" if moved is None else "differs"
            if moved is not None:
                entry["first_divergence"] = moved
        outputs.append(entry)
        if orig.get("image"):
            orig_img = bundle_dir / orig["image"] if bundle_dir else None
            orig_sha = next((f["sha256"] for f in manifest["files"] if f["path"] == orig["image"]), None)
            if new.get("image"):
                outputs.append({"engine": name, "output": "image",
                                **_judge_image(orig_img, orig_sha, new_dir / new["image"], shape, spec.tolerance)})
            else:
                outputs.append({"engine": name, "output": "image", "verdict": "differs",
                                "detail": "the replay produced no image"})
    return {"outputs": outputs,
            "reproduced": bool(outputs) and all(o["verdict"] != "differs" for o in outputs)}


def replay_bundle(source: Path, repo: Path | None = None, bundles: Path = Path("bundles"),
                  trust: bool = False, timeout: float | None = None,
                  in_container: bool | None = None,
                  on_event: EventSink | None = None) -> ReplayOutcome:
    """``in_container`` None: in the recorded image when the capture was containerized (and we
    are not already inside one), natively otherwise."""
    source = Path(source)
    manifest, bundle_dir = _locate(source)
    recorded_container = (manifest.get("environment") or {}).get("container")
    if in_container is None:
        in_container = bool(recorded_container) and "NB_CONTAINER_IMAGE_ID" not in os.environ
    if in_container:
        from bundle.container.incontainer import replay_in_container

        summary = replay_in_container(source, manifest, repo, bundles, trust=trust,
                                      timeout=timeout, on_event=on_event)
        return ReplayOutcome(summary=summary, bundle=Path(summary["bundle"]))
    if recorded_container and repo is None and manifest["target"].get("host_repo"):
        repo = Path(manifest["target"]["host_repo"])
    spec, target = _spec_and_target(manifest)
    repo_path = Path(repo or manifest["target"]["repo"]).resolve()
    if not repo_path.is_dir():
        raise UserError(f"--repo {repo_path}: not a directory (the recorded repo is "
                        f"{manifest['target']['repo']}; pass --repo PATH)")
    engines = [e["name"] for e in manifest["engines"]]
    reuse = {}
    for e in manifest["engines"]:
        if e.get("reused_log"):
            if bundle_dir is None:
                raise BundleError(f"{source}: engine {e['name']} reused a log that only the bundle holds")
            reuse[e["name"]] = str(bundle_dir / e["log"])
    prebuilt = {e["name"]: e["binary"]["path"] for e in manifest["engines"] if e.get("binary")}
    options = CaptureOptions(
        repo=repo_path, bundles=bundles, engines=tuple(engines), prebuilt=prebuilt,
        reuse_logs=reuse, timeout=timeout, replay_of=manifest["bundle_id"],
        reproduce=f"nb-evidence replay {source}",
    )

    def vet(plan: Plan) -> Plan:
        problems = check_safety(manifest, plan)
        if prebuilt and not trust:
            problems.append(f"engine binary {next(iter(prebuilt.values()))} is outside the repo")
        if problems and not trust:
            raise ReplayRefused(f"{source}: refusing to replay without --trust: {problems[0]}"
                                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return _recorded_plan(manifest, plan) if trust else plan

    result, new_dir = capture(spec, target, options, on_event=on_event, adjust_plan=vet)
    judged = judge(manifest, bundle_dir, new_dir, spec)
    summary = {"replay_of": manifest["bundle_id"], "bundle": str(new_dir),
               "reproduced": judged["reproduced"], "outputs": judged["outputs"],
               "verdict": result.verdict, "status": result.status}
    return ReplayOutcome(summary=summary, bundle=new_dir)

