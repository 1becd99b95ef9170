"""A run's key: what decides its result, each part digested on its own so that a rerun can say
which part changed (like Nextflow's ``-dump-hashes``). ``--resume`` reuses a member bundle only
when its key is the same (and it verifies).

The fields, in the order ``first_changed`` reports them:

- ``engine <name>``: the sha256 of each source file the profile lists for the engine; for a
  Python source also every ``*.py`` of its package directory (the engine imports them, so a
  fault in any of them is a different engine). A prebuilt binary: its own digest.
- ``argv``: the final shared argument list (image flag added) and the traced pixel.
- ``inputs``: the input files the run's arguments name (a spec's inputs are "files the
  arguments name": a run whose args do not name one does not read it), each by its digest when
  the repo holds it; one the prepare command makes is keyed by the prepare TEMPLATE plus the
  digests of the repo files it is run from (the module ``-m`` names, or any word that is a repo
  file): honest without running it.
- ``env``: the allow-listed environment variables (bundle.capture.environment) as this
  coordinating process has them (workers of a --scheduler cluster may differ: README says so).
- ``options``: tolerance and engine options (dtype, device, threads) as the member spec has them.
- ``profile``: the target profile (to_data).
- ``format``: the bundle format version and the suite format version.
- ``container``: the image id when containerized, else "native".
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from bundle.capture.sources import engine_files

from bundle.capture.environment import allowed
from bundle.capture.spec import Spec
from bundle.capture.target import TargetProfile
from bundle.model.hashing import sha256_file
from bundle.model.records import FORMAT_VERSION
from bundle.suite.model import SUITE_FORMAT_VERSION


def _sha(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha(path: Path) -> str:
    """A file's sha256 (bundle.model.hashing), or why it could not be read: a key field either way."""
    try:
        return sha256_file(path)[1]
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _repo_files(repo: Path, rels: list[str]) -> dict[str, str]:
    return {rel: (file_sha(repo / rel) if (repo / rel).is_file() else "absent")
            for rel in sorted(set(rels))}


def prepare_files(repo: Path, prepare: tuple[str, ...]) -> list[str]:
    """The repo files a prepare command is run from: ``-m a.b`` -> a/b.py (or a/b/__main__.py
    and the package's files), and any word that names a file in the repo."""
    rels = [w for w in prepare if "{" not in w and (repo / w).is_file()]
    for flag, module in zip(prepare, prepare[1:]):
        if flag == "-m":
            base = module.replace(".", "/")
            for rel in (f"{base}.py", f"{base}/__main__.py"):
                if (repo / rel).is_file():
                    rels += engine_files(repo, (rel,))
    return rels


def run_key(spec: Spec, profile: TargetProfile, repo: Path, *,
            prebuilt: Mapping[str, str] | None = None, container_image: str | None = None,
            environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """(the run key, field name -> the field's sha256). ``spec`` is the member spec as it will be
    captured (bundle.suite.members.member_spec)."""
    repo, prebuilt = Path(repo), dict(prebuilt or {})
    fields: dict[str, str] = {}
    for engine in profile.engines:
        if engine.name in prebuilt:
            fields[f"engine {engine.name}"] = _sha({"binary": file_sha(Path(prebuilt[engine.name]))})
        else:
            fields[f"engine {engine.name}"] = _sha(_repo_files(repo, engine_files(repo, engine.sources)))
    fields["argv"] = _sha({"args": list(spec.args), "pixel": list(spec.pixel) if spec.pixel else None})
    fields["inputs"] = _sha(input_record(spec, repo))
    env = os.environ if environ is None else environ
    fields["env"] = _sha({k: v for k, v in sorted(env.items()) if allowed(k)})
    data = spec.to_data()
    fields["options"] = _sha({"tolerance": data["tolerance"], "engines": data["engines"]})
    fields["profile"] = _sha(profile.to_data())
    fields["format"] = _sha({"bundle": FORMAT_VERSION, "suite": SUITE_FORMAT_VERSION})
    fields["container"] = _sha(container_image or "native")
    key = hashlib.sha256("".join(f"{k}={v}\n" for k, v in fields.items()).encode()).hexdigest()
    return key, fields


def input_record(spec: Spec, repo: Path) -> dict[str, Any]:
    """What the inputs field digests (module docstring)."""
    named = [f for f in spec.inputs.files if f in spec.args]
    in_repo = {f: file_sha(repo / f) for f in named if (repo / f).is_file()}
    made = [f for f in named if f not in in_repo]
    record: dict[str, Any] = {"repo": in_repo, "prepared": made}
    if made:
        record["prepare"] = list(spec.inputs.prepare)
        record["prepare_from"] = _repo_files(repo, prepare_files(repo, spec.inputs.prepare))
    return record


def first_changed(old_fields: Mapping[str, str], new_fields: Mapping[str, str]) -> str | None:
    """The first field (in the new key's order) whose digest differs or is new; then one the
    old key had and the new lacks; None when the keys' fields are the same."""
    for name, value in new_fields.items():
        if old_fields.get(name) != value:
            return name
    return next((name for name in old_fields if name not in new_fields), None)
