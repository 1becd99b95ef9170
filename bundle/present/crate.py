"""ro-crate-metadata.json: the capture's provenance as an RO-Crate (Process Run Crate 0.5).

``crate_metadata`` is pure: it builds the crate in memory with the ``rocrate`` library and returns
its JSON-LD dict; nothing is copied or written. ``write_crate`` is the one function that writes.

The shape (https://w3id.org/ro/wfrun/process/0.5, on RO-Crate 1.1, which that profile extends):

- the root ``./`` ``conformsTo`` the Process Run Crate profile; ``hasPart`` lists every bundle
  file (``@id`` = its path relative to the bundle root) with ``contentSize``, ``sha256`` and
  ``encodingFormat``; ``mentions`` lists the actions;
- one ``CreateAction`` per recorded command (``#cmd-<step>``): ``instrument`` is the build tool
  or the engine (a ``SoftwareApplication`` with name and, where known, ``softwareVersion``),
  ``object`` the files it read, ``result`` the files it wrote plus its logs, ``startTime`` and
  ``endTime``, ``actionStatus`` Completed or Failed (with ``error`` saying why), ``environment``
  the recorded variables as ``PropertyValue`` entities, and ``containerImage`` when the capture
  ran in a container;
- files a command read or wrote that are not in the bundle (a repo source, a scratch output)
  are ``File`` entities with a ``#`` id, their digest, and a description of where they were.

Terms the RO-Crate 1.1 context lacks (``sha256``, ``environment``, ``containerImage``,
``ContainerImage``, ``DockerImage``, ``registry``, ``tag``) are defined inline, mapped to the
workflow-run vocabulary as the profile does, so the crate needs no second remote context.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from bundle import __version__
from bundle.model.records import CaptureResult, CommandRecord, FileDigest

CRATE_VERSION = "1.1"  # the RO-Crate version Process Run Crate 0.5 is a profile of
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WFRUN = "https://w3id.org/ro/terms/workflow-run#"
EXTRA_TERMS = {
    "sha256": WFRUN + "sha256",
    "environment": WFRUN + "environment",
    "containerImage": WFRUN + "containerImage",
    "ContainerImage": WFRUN + "ContainerImage",
    "DockerImage": WFRUN + "DockerImage",
    "registry": WFRUN + "registry",
    "tag": WFRUN + "tag",
}
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
METADATA_FILE = "ro-crate-metadata.json"

_FORMATS = {
    ".md": "text/markdown", ".json": "application/json", ".png": "image/png",
    ".parquet": "application/vnd.apache.parquet", ".stdout": "text/plain",
    ".stderr": "text/plain", ".txt": "text/plain", ".log": "text/plain",
    ".bin": "application/octet-stream", ".toml": "application/toml", ".c": "text/x-c",
    ".py": "text/x-python", ".hkl": "text/plain", ".mat": "text/plain", ".csv": "text/csv",
}
_TOOL_URLS = {
    "gcc": "https://gcc.gnu.org/", "cc": "https://gcc.gnu.org/",
    "python": "https://www.python.org/",
}


# --------------------------------------------------------------------------- helpers


def iso_time(stamp: str) -> str:
    """An ISO-8601 UTC time as the profile's pattern wants it: milliseconds and ``+00:00``.

    ``2026-11-27T21:05:01.123456Z`` -> ``2026-11-27T21:05:01.123+00:00``. A value that does not
    parse is returned unchanged (recorded as is, never invented).
    """
    if not stamp:
        return stamp
    try:
        t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def encoding_format(path: str) -> str:
    return _FORMATS.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)


def _tool_version(name: str, versions: Mapping[str, Any]) -> str | None:
    """Version of a program from the environment's ``versions``, by its basename."""
    candidates = [name, name.split("-")[0], name.rstrip("0123456789.")]
    if name.startswith("python"):
        candidates.append("python")
    if name in ("cc", "c++", "g++"):
        candidates.append("gcc")
    for c in candidates:
        v = versions.get(c)
        if v:
            return str(v)
    return None


def _tool_key(name: str) -> str:
    if name.startswith("python"):
        return "python"
    if name in ("cc", "c++", "g++") or name.startswith("gcc"):
        return "gcc"
    return name


def _error_text(cmd: CommandRecord) -> str:
    if cmd.timed_out:
        text = f"timed out after {cmd.wall_s:.1f} s"
    elif cmd.exit_code is None:
        text = "did not start"
    else:
        text = f"exited with code {cmd.exit_code}"
    if cmd.error:
        text += f": {cmd.error}"
    return text


# --------------------------------------------------------------------------- the crate


def crate_metadata(result: CaptureResult, files: Sequence[FileDigest]) -> dict:
    """The JSON-LD dict of the bundle's ``ro-crate-metadata.json``. Pure: nothing is read or
    written; ``files`` are the bundle's files (paths relative to the bundle root)."""
    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_terms.update(EXTRA_TERMS)
    root = _describe_root(crate, result)
    entities = _FileEntities(crate, files)
    container = (result.environment or {}).get("container") or None
    image = crate.add(_container_image(crate, container)) if container else None
    actions = _actions(crate, result, entities, image)
    _set(root, "mentions", actions)
    _set(root, "hasPart", [entities.by_path[p] for p in sorted(entities.by_path)])
    return crate.metadata.generate()


def _describe_root(crate: ROCrate, result: CaptureResult) -> Any:
    """The root dataset: name, description, date, identifier, profile and license."""
    spec = result.spec or {}
    root = crate.root_dataset
    root["name"] = f"nb-evidence bundle {result.bundle_id}"
    desc = [f"Parity evidence: verdict {result.verdict}, status {result.status}, "
            f"target {result.target}."]
    if spec.get("description"):
        desc.append(str(spec["description"]).strip())
    if result.reproduce:
        desc.append(f"Reproduce with: {result.reproduce}")
    desc.append(f"Recorded by nb-evidence {__version__}.")
    root["description"] = " ".join(desc)
    # when the capture began; else its first command; never "now" (the dict must be pure)
    starts = [c.start_utc for c in result.commands if c.start_utc]
    root["datePublished"] = iso_time(result.created_utc or (starts[0] if starts else "")) \
        or "1970-01-01T00:00:00.000+00:00"
    if result.bundle_id:
        root["identifier"] = result.bundle_id
    profile = crate.add(ContextEntity(crate, PROCESS_RUN_CRATE, properties={
        "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"}))
    root["conformsTo"] = profile
    root["license"] = crate.add(_license(crate, spec))
    return root


class _FileEntities:
    """The crate's File entities: one per bundle file, and one '#' entity per content and name
    for files outside the bundle, saying where each was seen (so the file one step wrote and the
    next step read are the same entity)."""

    def __init__(self, crate: ROCrate, files: Sequence[FileDigest]) -> None:
        self.crate = crate
        self.by_path: dict[str, Any] = {}
        self.by_sha: dict[tuple[str, int], Any] = {}
        self.outside: dict[tuple[str, int, str], tuple[Any, list[str]]] = {}
        for f in sorted(files, key=lambda d: d.path):
            if f.path == METADATA_FILE:
                continue  # the crate cannot list its own digest
            ent = crate.add_file(dest_path=f.path, fetch_remote=False, validate_url=False, properties={
                "name": PurePosixPath(f.path).name, "contentSize": f.size, "sha256": f.sha256,
                "encodingFormat": encoding_format(f.path)})
            self.by_path[f.path] = ent
            if f.size > 0:
                self.by_sha.setdefault((f.sha256, f.size), ent)

    def entity(self, d: FileDigest) -> Any:
        """A bundle file when the digest is one (by path, or the same content copied in);
        otherwise the outside entity of that content and name."""
        if d.root == "bundle" and d.path in self.by_path:
            return self.by_path[d.path]
        if d.size > 0 and (d.sha256, d.size) in self.by_sha:
            return self.by_sha[(d.sha256, d.size)]
        name = PurePosixPath(d.path).name
        key = (d.sha256, d.size, name)
        where = f"{d.path} under {d.root}"
        if key in self.outside:
            ent, seen = self.outside[key]
            if where not in seen:
                seen.append(where)
                ent["description"] = _outside_description(seen)
            return ent
        ent = self.crate.add(ContextEntity(self.crate, f"#file-{d.sha256[:12]}-{_slug(name)}", properties={
            "@type": "File", "name": name, "contentSize": d.size, "sha256": d.sha256,
            "encodingFormat": encoding_format(d.path),
            "description": _outside_description([where])}))
        self.outside[key] = (ent, [where])
        return ent


def _actions(crate: ROCrate, result: CaptureResult, entities: _FileEntities, image: Any) -> list[Any]:
    """One CreateAction per command, with what it read and wrote."""
    versions: Mapping[str, Any] = (result.environment or {}).get("versions") or {}
    actions = []
    built: dict[str, Any] = {}  # basename of a file an earlier command wrote -> its entity
    for cmd in result.commands:
        instrument = _instrument(crate, cmd, result, versions)
        objects = [entities.entity(d) for d in cmd.inputs]
        prog = PurePosixPath(cmd.argv[0]).name if cmd.argv else ""
        if prog in built:  # the program is a file an earlier step built: it is read here too
            objects.insert(0, built[prog])
        results = [entities.entity(d) for d in cmd.outputs]
        for d, ent in zip(cmd.outputs, results):
            built[PurePosixPath(d.path).name] = ent
        results += [entities.entity(d) for d in (cmd.stdout, cmd.stderr) if d is not None]
        action = crate.add_action(instrument, identifier=f"#cmd-{_slug(cmd.step)}",
                                  properties=_action_properties(cmd))
        _set(action, "object", _unique(objects))
        _set(action, "result", _unique(results))
        envs = [crate.add(_env_value(crate, k, v)) for k, v in cmd.env]
        _set(action, "environment", envs)
        if image is not None:
            action["containerImage"] = image
        actions.append(action)
    return actions


def _action_properties(cmd: CommandRecord) -> dict[str, Any]:
    props: dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"{cmd.step}: {os.path.basename(cmd.argv[0]) if cmd.argv else '?'}",
        "description": (f"{cmd.role} step '{cmd.step}'"
                        + (f" of engine {cmd.engine}" if cmd.engine else "")
                        + f", run in {cmd.cwd}: {shlex.join(cmd.argv)}"),
        "startTime": iso_time(cmd.start_utc),
        "endTime": iso_time(cmd.end_utc),
        "actionStatus": COMPLETED if cmd.ok else FAILED,
    }
    if not cmd.ok:
        props["error"] = _error_text(cmd)
    return props


def _outside_description(seen: list[str]) -> str:
    return "Not copied into the bundle; seen as " + "; ".join(seen) + "."


def _set(entity: Any, key: str, values: list) -> None:
    """A property with one value as a single reference, several as a list, none as absent
    (RO-Crate 1.1 prefers single values to singleton arrays)."""
    if not values:
        if key in entity.properties():
            del entity[key]
        return
    entity[key] = values[0] if len(values) == 1 else values


def _unique(entities: list) -> list:
    seen, out = set(), []
    for e in entities:
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def _license(crate: ROCrate, spec: Mapping) -> ContextEntity:
    lic = spec.get("license")
    if isinstance(lic, str) and lic.startswith(("http://", "https://")):
        return ContextEntity(crate, lic, properties={"@type": "CreativeWork", "name": lic})
    if lic:
        return ContextEntity(crate, "#license", properties={
            "@type": "CreativeWork", "name": str(lic)})
    return ContextEntity(crate, "#license", properties={
        "@type": "CreativeWork", "name": "No license declared",
        "description": "The capture spec declared no license for this bundle (spec key "
                       "'license'); ask its author before reusing it."})


def _env_value(crate: ROCrate, name: str, value: str) -> ContextEntity:
    h = hashlib.sha256(f"{name}\0{value}".encode()).hexdigest()[:10]
    return ContextEntity(crate, f"#env-{_slug(name)}-{h}", properties={
        "@type": "PropertyValue", "name": name, "value": value})


def _container_image(crate: ROCrate, c: Mapping) -> ContextEntity:
    image_id = str(c.get("image_id") or "")
    tag = c.get("image_tag") or ""
    props: dict[str, Any] = {
        "@type": "ContainerImage",
        "additionalType": {"@id": WFRUN + "DockerImage"},
        "name": (tag.rsplit(":", 1)[0] if tag and ":" in tag.split("/")[-1] else tag) or image_id,
        "identifier": image_id,
    }
    if tag and ":" in tag.split("/")[-1]:
        props["tag"] = tag.rsplit(":", 1)[1]
    if image_id.startswith("sha256:"):
        props["sha256"] = image_id.split(":", 1)[1]
    digests = [d for d in (c.get("repo_digests") or []) if d]
    if digests:
        first = digests[0].split("@", 1)[0]
        host = first.split("/", 1)[0]
        props["registry"] = host if ("." in host or ":" in host) and "/" in first else "docker.io"
        props["alternateName"] = digests if len(digests) > 1 else digests[0]
    if c.get("engine_version"):
        props["description"] = f"built and run with {c['engine_version']}"
    return ContextEntity(crate, "#container-image", properties=props)


def _instrument(crate: ROCrate, cmd: CommandRecord, result: CaptureResult,
                versions: Mapping[str, Any]) -> Any:
    """The engine (for an engine's run) or the program (a build tool, a prepare command) as a
    SoftwareApplication; the program an engine ran through is its softwareRequirements."""
    prog = os.path.basename(cmd.argv[0]) if cmd.argv else "unknown"
    key = _tool_key(prog)
    ident = f"#tool-{_slug(key)}"
    app = crate.dereference(ident)
    if app is None:
        props: dict[str, Any] = {"@type": "SoftwareApplication", "name": key}
        ver = _tool_version(prog, versions)
        if ver:
            props["softwareVersion"] = ver
        if key in _TOOL_URLS:
            props["url"] = _TOOL_URLS[key]
        app = crate.add(ContextEntity(crate, ident, properties=props))
    if cmd.role == "build" or cmd.engine is None:
        return app
    eng_id = f"#engine-{_slug(cmd.engine)}"
    eng = crate.dereference(eng_id)
    if eng is None:
        props = {"@type": "SoftwareApplication",
                 "name": f"{result.target} engine {cmd.engine}",
                 "description": f"the '{cmd.engine}' side of the comparison, target "
                                f"{result.target}"}
        ver = _engine_version(result, cmd.engine, versions)
        if ver:
            props["softwareVersion"] = ver
        eng = crate.add(ContextEntity(crate, eng_id, properties=props))
    if app is not eng:
        reqs = eng.get("softwareRequirements")
        ids = {r["@id"] for r in (reqs if isinstance(reqs, list) else [reqs] if reqs else [])}
        if app.id not in ids:
            eng.append_to("softwareRequirements", app, compact=True)
    return eng


def _engine_version(result: CaptureResult, engine: str, versions: Mapping[str, Any]
                    ) -> str | None:
    """What versions the engine: the repo commit when recorded, else an explicit per-engine
    entry in ``versions``."""
    env = result.environment or {}
    sources = [env, env.get("git"), (result.extra or {}).get("target")]
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        commit = source.get("repo_commit")
        if commit:
            dirty = source.get("repo_dirty")
            return f"{commit}{'+dirty' if dirty else ''}"
    for k in (f"engine_{engine}", engine):
        if versions.get(k):
            return str(versions[k])
    return None


def write_crate(bundle_dir: Path, metadata: dict) -> Path:
    """Write ``ro-crate-metadata.json`` into the bundle directory; return its path."""
    path = Path(bundle_dir) / METADATA_FILE
    path.write_text(json.dumps(metadata, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- offline validation


RO_CRATE_CONTEXT_URL = f"https://w3id.org/ro/crate/{CRATE_VERSION}/context"


def seed_context_cache(cache_path: Path) -> Path:
    """Put the RO-Crate JSON-LD context that ships inside the ``rocrate`` package
    (``rocrate/data/ro-crate.jsonld``) into a requests-cache SQLite file, as the 200 response
    for ``https://w3id.org/ro/crate/1.1/context``, so roc-validator can run with
    ``offline=True`` (it then answers every HTTP request from this cache only).

    The shipped file is the RO-Crate *1.3* context, a superset of 1.1's schema.org terms; our
    crate defines every non-schema.org term it uses inline, so it does not lean on a 1.2/1.3-only
    term. Returns the cache path to hand to ``ValidationSettings(cache_path=...)``.
    """
    import importlib.resources
    import io

    import requests
    import urllib3
    from requests_cache import CachedSession

    body = importlib.resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_bytes()
    json.loads(body)  # fail loudly if the shipped copy is not JSON
    headers = {"Content-Type": "application/ld+json"}
    resp = requests.Response()
    resp.status_code, resp.reason, resp.url, resp._content = 200, "OK", RO_CRATE_CONTEXT_URL, body
    resp.headers.update(headers)
    resp.request = requests.Request("GET", RO_CRATE_CONTEXT_URL).prepare()
    resp.raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=200,
                                    preload_content=False, request_url=RO_CRATE_CONTEXT_URL)
    cache_path = Path(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    # the same backend and serializer roc-validator's HttpRequester opens the cache with
    session = CachedSession(cache_name=str(cache_path), backend="sqlite")
    try:
        session.cache.save_response(resp)
    finally:
        session.close()
    return cache_path


def validate_crate(bundle_dir: Path, cache_path: Path | None = None, *,
                   severity: str = "REQUIRED", profile: str = "process-run-crate-0.5"
                   ) -> list[str]:
    """Validate a bundle's crate with roc-validator, offline; return the issues as
    ``"<severity> <check id>: <message>"`` lines (empty when it passes).

    ``cache_path`` (a fresh temporary one when None) is seeded with the RO-Crate context first
    (see ``seed_context_cache``); any other remote resource the validator would need is a cache
    miss and shows up as an issue, never as a silent pass.
    """
    if cache_path is None:
        import tempfile
        with tempfile.TemporaryDirectory(prefix="nb-rocv-") as tmp:
            return validate_crate(bundle_dir, Path(tmp) / "http_cache", severity=severity,
                                  profile=profile)
    from rocrate_validator import services
    from rocrate_validator.models import Severity, ValidationSettings

    seed_context_cache(cache_path)
    settings = ValidationSettings(rocrate_uri=str(Path(bundle_dir).resolve()),
                                  profile_identifier=profile,
                                  requirement_severity=Severity[severity], offline=True,
                                  cache_path=Path(cache_path))
    result = services.validate(settings)
    issues = [f"{i.severity.name} {getattr(i.check, 'identifier', '?')}: {i.message}"
              for i in result.get_issues()]
    if not result.passed() and not issues:
        issues.append("validation did not pass, and reported no issue")
    return issues
