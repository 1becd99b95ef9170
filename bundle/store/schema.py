"""The manifest's schema: load ``manifest.schema.json`` and check a manifest against it.

``validate_manifest`` returns problems as data (one human-readable line each, empty when valid);
``load_manifest`` is the strict door every command that reads a bundle goes through: it raises
``BundleError`` when the manifest is missing, unparsable or invalid.

Beyond what JSON Schema can say, two rules are checked here: every ``files[].path`` is listed
once, and ``manifest.json`` itself is never listed (it cannot hold its own hash).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from bundle.model.errors import BundleError
from bundle.model.files import one_line

MANIFEST_NAME = "manifest.json"
SCHEMA_NAME = "manifest.schema.json"
_MAX_MESSAGE = 200


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of manifest.json, format version 1."""
    text = resources.files("bundle.store").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = manifest_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(error: ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def _most_specific(error: ValidationError) -> ValidationError:
    """For a failed oneOf/anyOf, the error of the alternative that came closest (not 'null')."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        real = [e for e in error.context if e.schema != {"type": "null"}]
        error = best_match(real or error.context)
    return error


def _one_line(text: str) -> str:
    return one_line(text, _MAX_MESSAGE)


def validate_manifest(data: Any) -> list[str]:
    """Every way ``data`` departs from the manifest format, one line each; [] when valid."""
    problems: list[tuple[str, str]] = []
    for error in _validator().iter_errors(data):
        err = _most_specific(error)
        message = err.message
        if err.validator == "pattern" and isinstance(err.schema, dict) and "description" in err.schema:
            message = f"{err.instance!r} is not valid: {err.schema['description']}"
        problems.append((_where(err), _one_line(message)))
    problems.sort()
    lines = [f"{where}: {msg}" for where, msg in problems]

    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(files, list):
        seen: set[str] = set()
        for i, entry in enumerate(files):
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str):
                continue
            if path == MANIFEST_NAME:
                lines.append(f"files[{i}].path: {MANIFEST_NAME} must not list itself")
            if path in seen:
                lines.append(f"files[{i}].path: {path!r} is listed more than once")
            seen.add(path)
    return lines


def manifest_path(path: Path | str) -> Path:
    """``path`` itself when it names a file, else ``path/manifest.json``."""
    path = Path(path)
    return path if path.is_file() else path / MANIFEST_NAME


def read_manifest(path: Path | str) -> dict[str, Any]:
    """Parse a manifest (a bundle dir or the file) WITHOUT validating it.

    Raises BundleError when the file is missing, unreadable, not JSON, or not a JSON object.
    """
    file = manifest_path(path)
    if not Path(path).exists():
        raise BundleError(f"{path}: no such bundle directory or manifest file")
    if not file.is_file():
        raise BundleError(f"{file}: missing (is {path} a bundle directory?)")
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise BundleError(f"{file}: cannot read: {e.strerror or e}") from e
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BundleError(f"{file}: not UTF-8 text (byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise BundleError(f"{file}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError:  # a hostile file nested deeper than the parser's stack
        raise BundleError(f"{file}: nested too deeply to be a manifest") from None
    if not isinstance(data, dict):
        raise BundleError(f"{file}: not a JSON object (found {type(data).__name__})")
    return data


def load_manifest(path: Path | str) -> dict[str, Any]:
    """Read and validate a manifest; ``path`` is a bundle directory or a manifest.json file.

    Raises BundleError when it is missing, unparsable, or invalid against the schema.
    """
    data = read_manifest(path)
    problems = validate_manifest(data)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(f"{manifest_path(path)}: invalid manifest: {problems[0]}{more}")
    return data
