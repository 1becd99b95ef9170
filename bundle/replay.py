"""Replay: re-run a bundle's recorded capture, write a NEW bundle naming the original, and judge
each output: ``identical`` (same bytes), ``within tolerance`` (same comparison code and the spec's
tolerances as the capture), or ``differs`` (with the first key that moved).

A manifest is a list of commands someone else may have written, so before anything runs the
bundle is verified (a tampered one is refused) and, without ``--trust``, replay runs a command
only if it is exactly what this checkout's own code would produce:
- the target is a built-in profile, by name (never the copy embedded in the manifest);
- every recorded command template is the one the built-in plan holds for that step;
- a prepare command is absent, or identical to the one of a spec shipped in ``manifests/`` with
  the same name and content hash;
- every recorded environment variable is on the allow-list;
- no argument names a path outside the repo, the scratch area or the bundle.
The refusal names the step and the first differing token. ``--trust`` runs the recorded
templates as they are, and the new manifest says so (``trusted``).

Logs are judged by their trace lines, never their bytes: timestamps and timings in stdout must
not turn a reproduced result into ``differs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bundle.capture.options import CaptureOptions
from bundle.capture.request import check_timeout
from bundle.pipeline import capture, trace_digest
from bundle.present.vocabulary import TRUSTED_NOTE
from bundle.analysis.compare import compare_traces, summary_json
from bundle.model.errors import BundleError, UserError
from bundle.model.hashing import sha256_file
from bundle.analysis.metrics import load_float_image
from bundle.capture.plan import Plan, detector_shape, fill
from bundle.capture.runner import EventSink
from bundle.store.schema import load_manifest
from bundle.capture.spec import recorded_spec
from bundle.capture.target import BUILTIN, load_target, recorded_profile
from bundle.analysis.trace import parse_file


class ReplayRefused(UserError):
    """The manifest asks for something this checkout would not run (no --trust)."""


class ReplayTampered(BundleError):
    """The bundle is not what its manifest says: replaying it would prove nothing."""

    exit_code = 1


SHIPPED_SPECS = Path(__file__).resolve().parent.parent / "manifests"


@dataclass(frozen=True)
class ReplayOutcome:
    summary: dict
    bundle: Path | None


@dataclass(frozen=True)
class PlannedCommand:
    """One command a replay would run (``--dry-run``): ``builtin`` when it is what this
    checkout's own code produces, ``foreign`` when only the manifest says so."""

    step: str
    origin: str
    line: str


def _locate(source: Path) -> tuple[dict, Path | None]:
    manifest = load_manifest(source)
    bundle_dir = source if source.is_dir() else (source.parent if source.name == "manifest.json" else None)
    return manifest, bundle_dir


def _spec_and_target(manifest: Mapping[str, Any], trust: bool):
    spec = recorded_spec(manifest["spec"], source=f"{manifest['bundle_id']}:spec")
    name = manifest["target"]["name"]
    if name in BUILTIN:
        return spec, load_target(name), False
    if not trust:
        raise ReplayRefused(f"{manifest['bundle_id']}: refusing to replay without --trust: target "
                            f"{name!r} is not a built-in profile ({', '.join(BUILTIN)}); its "
                            "embedded profile runs only with --trust")
    return spec, recorded_profile(manifest["target"], source=f"{manifest['bundle_id']}:target"), True


def shipped_spec_files(*directories: Path) -> dict[str, Path]:
    """sha256 -> a spec file shipped in ``manifests/`` with that content (the first directory
    given wins; default: nb-evidence's own)."""
    out: dict[str, Path] = {}
    for d in directories or (SHIPPED_SPECS,):
        for path in sorted(d.glob("*.toml")) if d.is_dir() else ():
            out.setdefault(sha256_file(path)[1], path)
    return out


def shipped_specs(*directories: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """sha256 of each spec shipped in ``manifests/`` -> (its name, its prepare command).

    Looked for in nb-evidence's own ``manifests/`` and in the checkout replayed against (inside a
    container, the installed package has no ``manifests/`` but the mounted checkout does): the
    checkout's code runs anyway; only the manifest is someone else's word."""
    import tomllib

    out = {}
    for sha, path in shipped_spec_files(*directories).items():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        prepare = tuple((data.get("inputs") or {}).get("prepare") or ())
        out[sha] = (data.get("name"), prepare)
    return out


def first_difference(recorded: Sequence[str], builtin: Sequence[str]) -> str:
    """Where two argv templates part: the first token that differs, 1-based."""
    for i, (r, b) in enumerate(zip(recorded, builtin), start=1):
        if r != b:
            return f"token {i} is {r!r} where this checkout has {b!r}"
    if len(recorded) > len(builtin):
        return f"token {len(builtin) + 1} is {recorded[len(builtin)]!r} where this checkout has none"
    return f"token {len(recorded) + 1} is missing where this checkout has {builtin[len(recorded)]!r}"


def _suite_member(suite_name: str | None, spec_data: Mapping[str, Any]) -> bool:
    """A member of a shipped suite (bundle.suite.members): its spec is named
    ``<suite>-<case>-<run>``, its source is ``<suite file>#<case>/<run>`` and its sha256 is the
    suite file's, so the shipped suite's prepare command is the one this checkout runs."""
    path = str((spec_data.get("source") or {}).get("path") or "")
    return bool(suite_name) and "#" in path and str(spec_data.get("name", "")).startswith(f"{suite_name}-")


def _prepare_problem(spec_data: Mapping[str, Any], shipped: Mapping) -> str | None:
    prepare = tuple((spec_data.get("inputs") or {}).get("prepare") or ())
    if not prepare:
        return None
    digest = (spec_data.get("source") or {}).get("sha256")
    name, ours = shipped.get(digest, (None, ()))
    if name != spec_data.get("name") and not _suite_member(name, spec_data):
        return (f"step prepare-inputs: no spec named {spec_data.get('name')!r} with sha256 "
                f"{str(digest)[:12]}… is shipped in manifests/, so its prepare command is foreign "
                f"(token 1 is {prepare[0]!r})")
    if prepare != ours:
        return f"step prepare-inputs: {first_difference(prepare, ours)}"
    return None


def foreign_steps(manifest: Mapping[str, Any], plan: Plan, shipped: Mapping) -> dict[str, str]:
    """Step -> why it is not what this checkout would run (empty: all builtin). Pure."""
    from bundle.capture.environment import allowed

    why: dict[str, str] = {}
    recorded = manifest["arguments"].get("templates", {})
    planned = {s.name: list(s.argv_template) for s in plan.steps}
    prepare = _prepare_problem(manifest["spec"], shipped)
    if prepare:
        why["prepare-inputs"] = prepare
    for step, template in recorded.items():
        if step not in planned:
            why.setdefault(step, f"step {step}: this checkout's plan has no such step")
        elif template != planned[step]:
            why.setdefault(step, f"step {step}: {first_difference(template, planned[step])}")
    for cmd in manifest["commands"]:
        step = cmd["step"]
        if step not in recorded:
            why.setdefault(step, f"step {step}: no recorded template")
        bad = sorted(k for k in (cmd.get("env") or {}) if not allowed(k))
        if bad:
            why.setdefault(step, f"step {step}: env {bad[0]} is outside the allow-list")
    return why


def _escapes(token: str) -> bool:
    if ".." in Path(token).parts or "/../" in token or token.endswith("/.."):
        return True
    for placeholder in ("{repo}", "{scratch}", "{python}"):
        if token.startswith(placeholder):
            return False
    return token.startswith("/")


def check_safety(manifest: Mapping[str, Any], plan: Plan,
                 shipped: Mapping | None = None) -> list[str]:
    """Why this manifest may not be replayed without --trust (empty: it may)."""
    if shipped is None:
        shipped = shipped_specs(SHIPPED_SPECS, Path(plan.repo) / "manifests")
    problems = list(foreign_steps(manifest, plan, shipped).values())
    for step, template in manifest["arguments"].get("templates", {}).items():
        for token in template:
            if _escapes(token):
                problems.append(f"step {step}: path {token!r} leaves the repo and scratch area")
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


def _read_trace(log: Path | None, prefix: str):
    """The trace in ``log``, or None when there is no log or no trace line in it."""
    if log is None or not log.is_file():
        return None
    try:
        return parse_file(log, prefix)
    except UserError:
        return None


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
        # The original's prefix for both: a replay that prints another trace printed none of ours.
        new_trace = _read_trace(new_dir / new["log"] if new.get("log") else None, orig["prefix"])
        orig_trace = _read_trace(bundle_dir / orig["log"] if bundle_dir else None, orig["prefix"])
        orig_digest = orig.get("trace_sha256") or trace_digest(orig_trace)
        entry: dict[str, Any] = {"engine": name, "output": "trace"}
        if spec.pixel is None and orig_trace is None and new_trace is None:
            entry["verdict"] = "not traced"  # an image-only capture (a suite's untraced member)
        elif orig_digest is not None and orig_digest == trace_digest(new_trace):
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


def _open(source: Path) -> tuple[dict, Path | None]:
    """The manifest, after the bundle it came with (if any) proved intact."""
    from bundle.store.verify import verify_bundle

    manifest, bundle_dir = _locate(source)
    if bundle_dir is not None:
        checked = verify_bundle(bundle_dir)
        if not checked.intact:
            first = (checked.claims + checked.schema_problems + checked.changed + checked.missing
                     + checked.extra)
            raise ReplayTampered(f"TAMPERED {bundle_dir}: {first[0] if first else 'not intact'}; "
                                 "see `nb-evidence verify`; nothing was run")
    return manifest, bundle_dir


def _options(manifest: Mapping[str, Any], source: Path, bundle_dir: Path | None,
             repo: Path | None, bundles: Path, timeout: float | None, trusted: bool) -> CaptureOptions:
    if (manifest.get("environment") or {}).get("container") and repo is None \
            and manifest["target"].get("host_repo"):
        repo = Path(manifest["target"]["host_repo"])
    repo_path = Path(repo or manifest["target"]["repo"]).resolve()
    if not repo_path.is_dir():
        raise UserError(f"--repo {repo_path}: not a directory (the recorded repo is "
                        f"{manifest['target']['repo']}; pass --repo PATH)")
    reuse = {}
    for e in manifest["engines"]:
        if e.get("reused_log"):
            if bundle_dir is None:
                raise BundleError(f"{source}: engine {e['name']} reused a log that only the bundle holds")
            reuse[e["name"]] = str(bundle_dir / e["log"])
    notes = (TRUSTED_NOTE,) if trusted else ()
    return CaptureOptions(
        repo=repo_path, bundles=bundles, engines=tuple(e["name"] for e in manifest["engines"]),
        prebuilt={e["name"]: e["binary"]["path"] for e in manifest["engines"] if e.get("binary")},
        reuse_logs=reuse, timeout=timeout, replay_of=manifest["bundle_id"],
        reproduce=f"nb-evidence replay {source}", notes=notes, trusted=trusted,
    )


def _vetter(manifest: Mapping[str, Any], source: Path, options: CaptureOptions, trust: bool):
    """adjust_plan for capture: refuse a foreign manifest (no --trust) before anything runs."""
    def vet(plan: Plan) -> Plan:
        problems = check_safety(manifest, plan)
        if options.prebuilt:
            problems.append(f"engine binary {next(iter(options.prebuilt.values()))} is outside the repo")
        if problems and not trust:
            raise ReplayRefused(f"{source}: refusing to replay without --trust: {problems[0]}"
                                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return _recorded_plan(manifest, plan) if trust else plan
    return vet


def _vet_here(manifest: Mapping[str, Any], source: Path, bundle_dir: Path | None,
              repo: Path | None) -> None:
    """The no-trust rule on this machine's plan, for a replay that will run in a container (the
    replay inside applies it again, to the plan it runs)."""
    import tempfile

    from bundle.pipeline import plan_capture

    spec, target, _foreign = _spec_and_target(manifest, False)
    options = _options(manifest, source, bundle_dir, repo, Path("bundles"), None, False)
    scratch = Path(tempfile.gettempdir()) / "nb-evidence-<scratch>"
    _vetter(manifest, source, options, False)(plan_capture(spec, target, options, scratch))


def replay_plan(source: Path, repo: Path | None = None, trust: bool = False) -> list[PlannedCommand]:
    """``replay --dry-run``: the exact commands a replay would run, each marked ``builtin`` or
    ``foreign``. Runs nothing; a foreign command is listed (marked) even without --trust."""
    import shlex
    import tempfile

    from bundle.pipeline import plan_capture

    source = Path(source)
    manifest, bundle_dir = _open(source)
    spec, target, foreign_target = _spec_and_target(manifest, True)
    options = _options(manifest, source, bundle_dir, repo, Path("bundles"), None, trust)
    scratch = Path(tempfile.gettempdir()) / "nb-evidence-<scratch>"
    builtin = plan_capture(spec, target, options, scratch)
    shipped = shipped_specs(SHIPPED_SPECS, Path(builtin.repo) / "manifests")
    why = {} if foreign_target else foreign_steps(manifest, builtin, shipped)
    plan = _recorded_plan(manifest, builtin) if (trust or foreign_target) else builtin
    return [PlannedCommand(s.name, "foreign" if foreign_target or s.name in why else "builtin",
                           f"(cd {shlex.quote(s.cwd)} && "
                           + "".join(f"{k}={shlex.quote(v)} " for k, v in s.env)
                           + f"{shlex.join(s.argv)})")
            for s in plan.steps]


def replay_bundle(source: Path, repo: Path | None = None, bundles: Path = Path("bundles"),
                  trust: bool = False, timeout: float | None = None,
                  in_container: bool | None = None,
                  on_event: EventSink | None = None) -> ReplayOutcome:
    """``in_container`` None: in the recorded image when the capture was containerized (and we
    are not already inside one), natively otherwise. A tampered bundle raises ReplayTampered, a
    foreign one (without ``trust``) ReplayRefused, both before anything runs."""
    check_timeout(timeout)  # before the bundle is even opened: a bad limit costs nothing
    source = Path(source)
    manifest, bundle_dir = _open(source)
    recorded_container = (manifest.get("environment") or {}).get("container")
    if in_container is None:
        in_container = bool(recorded_container) and "NB_CONTAINER_IMAGE_ID" not in os.environ
    if in_container:
        from bundle.container.incontainer import replay_in_container

        if not trust:  # refused here, before any image is pulled, built or started
            _vet_here(manifest, source, bundle_dir, repo)
        summary = replay_in_container(source, manifest, repo, bundles, trust=trust,
                                      timeout=timeout, on_event=on_event)
        return ReplayOutcome(summary=summary, bundle=Path(summary["bundle"]))
    spec, target, _foreign = _spec_and_target(manifest, trust)
    options = _options(manifest, source, bundle_dir, repo, bundles, timeout, trust)
    result, new_dir = capture(spec, target, options, on_event=on_event,
                              adjust_plan=_vetter(manifest, source, options, trust))
    judged = judge(manifest, bundle_dir, new_dir, spec)
    summary = {"replay_of": manifest["bundle_id"], "bundle": str(new_dir),
               "reproduced": judged["reproduced"], "outputs": judged["outputs"],
               "verdict": result.verdict, "status": result.status, "trusted": trust}
    return ReplayOutcome(summary=summary, bundle=new_dir)
