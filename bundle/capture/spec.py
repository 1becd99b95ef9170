"""Capture specs: what to capture, read from TOML into a frozen dataclass.

A spec holds ONE simulator argument list that both engines receive. Parsing is split in two:
``parse_spec(data, source)`` is a pure function over the TOML's plain data, and ``load_spec(path)``
does the file I/O. Unknown fields are refused rather than ignored: a typo such as ``tolerence``
silently dropping a user's tolerance would make the evidence lie.

We validate by hand instead of with a schema library because every error must be one line that
names the file and the field, in the user's words (``spec.toml: tolerance.rtol must be a number``).
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from bundle.model import files
from bundle.model.errors import SpecError
from bundle.model.records import Tolerance

TOP_FIELDS = {"name", "item", "phase", "description", "target", "args", "pixel", "inputs",
              "tolerance", "engines"}
REQUIRED = ("name", "target", "args")
INPUT_FIELDS = {"files", "prepare"}
TOLERANCE_FIELDS = {"rtol", "atol", "keys", "amplification"}
ENGINE_OPTIONS = {"dtype", "device", "threads"}


@dataclass(frozen=True)
class Inputs:
    """Files the arguments name, and optionally a command that makes them when the repo lacks them."""

    files: tuple[str, ...] = ()
    prepare: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    target: str
    args: tuple[str, ...]
    pixel: tuple[int, int] | None = None  # (slow, fast)
    item: str = ""
    phase: str = ""
    description: str = ""
    inputs: Inputs = Inputs()
    tolerance: Tolerance = Tolerance()
    per_key: Mapping[str, Tolerance] = field(default_factory=dict)
    engines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""
    source_sha256: str = ""
    amplification: float | None = None  # A of bundle.analysis.roots; None: the target's graph's

    def args_sha256(self) -> str:
        """Digest of the shared argument list (NUL-joined, so argument boundaries count)."""
        return hashlib.sha256("\0".join(self.args).encode()).hexdigest()

    def to_data(self) -> dict:
        """Plain data for the manifest (the spec as loaded, plus where it came from)."""
        return {
            "name": self.name,
            "item": self.item,
            "phase": self.phase,
            "description": self.description,
            "target": self.target,
            "args": list(self.args),
            "pixel": list(self.pixel) if self.pixel else None,
            "inputs": {"files": list(self.inputs.files), "prepare": list(self.inputs.prepare)},
            "tolerance": {
                "rtol": self.tolerance.rtol,
                "atol": self.tolerance.atol,
                "keys": {k: {"rtol": t.rtol, "atol": t.atol} for k, t in self.per_key.items()},
                **({"amplification": self.amplification} if self.amplification else {}),
            },
            "engines": {k: dict(v) for k, v in self.engines.items()},
            "source": {"path": self.source, "sha256": self.source_sha256},
        }


def _fail(source: str, message: str) -> SpecError:
    return SpecError(f"{source}: {message}")


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(source, f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        # inf passes every comparison and nan fails every one: either makes the verdict lie
        raise _fail(source, f"{where} must be a finite number, got {value!r}")
    if value < 0:
        raise _fail(source, f"{where} must not be negative, got {value!r}")
    return float(value)


def _string_list(value: Any, where: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, f"{where} must be a list of strings")
    return tuple(value)


def refuse_unknown(data: Mapping, allowed: set[str], where: str, source: str) -> None:
    """A field we do not know is refused, in one line naming ``source`` (the file, or the file
    and the part of it: a suite's case and run) and the field under ``where``."""
    extra = sorted(str(k) for k in set(data) - allowed)
    if extra:
        prefix = f"{where}." if where else ""
        raise SpecError(files.one_line(f"{source}: unknown field {prefix}{extra[0]} "
                                       f"(allowed: {', '.join(sorted(allowed))})"))


def _tolerance(data: Any, where: str, source: str, base: Tolerance) -> Tolerance:
    if not isinstance(data, dict):
        raise _fail(source, f"{where} must be a table")
    refuse_unknown(data, {"rtol", "atol"}, where, source)
    return Tolerance(
        rtol=_number(data["rtol"], f"{where}.rtol", source) if "rtol" in data else base.rtol,
        atol=_number(data["atol"], f"{where}.atol", source) if "atol" in data else base.atol,
    )


def _amplification(raw: Mapping[str, Any], source: str) -> float | None:
    if "amplification" not in raw:
        return None
    value = _number(raw["amplification"], "tolerance.amplification", source)
    if not value > 0:
        raise _fail(source, "tolerance.amplification must be a positive number")
    return value


def parse_spec(data: Mapping[str, Any], source: str = "<spec>") -> Spec:
    """Turn a spec's plain data (as tomllib returns it) into a Spec, or raise SpecError."""
    refuse_unknown(data, TOP_FIELDS, "", source)
    for name in REQUIRED:
        if name not in data:
            raise _fail(source, f"missing required field {name}")
    for name in ("name", "item", "phase", "description", "target"):
        if name in data and not isinstance(data[name], str):
            raise _fail(source, f"{name} must be a string")
    if not data["name"].strip():
        raise _fail(source, "name must not be empty")
    args = _string_list(data["args"], "args", source)
    if not args:
        raise _fail(source, "args must not be empty")

    pixel = _pixel(data["pixel"], source) if "pixel" in data else None
    inputs = _inputs(data["inputs"], source) if "inputs" in data else Inputs()
    tolerance, per_key = (_tolerances(data["tolerance"], source) if "tolerance" in data
                          else (Tolerance(), {}))
    amplification = (_amplification(data["tolerance"], source)
                     if isinstance(data.get("tolerance"), dict) else None)
    engines = _engine_options(data.get("engines", {}), source)
    return Spec(
        name=data["name"].strip(),
        target=data["target"],
        args=args,
        pixel=pixel,
        item=data.get("item", ""),
        phase=data.get("phase", ""),
        description=data.get("description", ""),
        inputs=inputs,
        tolerance=tolerance,
        per_key=per_key,
        engines=engines,
        source=source,
        amplification=amplification,
    )


def _pixel(p: Any, source: str) -> tuple[int, int]:
    if (not isinstance(p, list) or len(p) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in p)):
        raise _fail(source, "pixel must be [slow, fast], two integers")
    if p[0] < 0 or p[1] < 0:
        raise _fail(source, f"pixel {p} must not be negative")
    return (p[0], p[1])


def _inputs(raw: Any, source: str) -> Inputs:
    if not isinstance(raw, dict):
        raise _fail(source, "inputs must be a table")
    refuse_unknown(raw, INPUT_FIELDS, "inputs", source)
    inputs = Inputs(
        files=_string_list(raw.get("files", []), "inputs.files", source),
        prepare=_string_list(raw.get("prepare", []), "inputs.prepare", source),
    )
    for f in inputs.files:
        if Path(f).is_absolute() or ".." in Path(f).parts:
            raise _fail(source, f"inputs.files entry {f!r} must be a path inside the repo")
    return inputs


def _tolerances(raw: Any, source: str) -> tuple[Tolerance, dict[str, Tolerance]]:
    """The default tolerance and the per-key ones (each starting from the default)."""
    if not isinstance(raw, dict):
        raise _fail(source, "tolerance must be a table")
    refuse_unknown(raw, TOLERANCE_FIELDS, "tolerance", source)
    tolerance = _tolerance({k: v for k, v in raw.items() if k not in ("keys", "amplification")},
                           "tolerance", source, Tolerance())
    keys = raw.get("keys", {})
    if not isinstance(keys, dict):
        raise _fail(source, "tolerance.keys must be a table of key = {rtol, atol}")
    return tolerance, {key: _tolerance(tol, f"tolerance.keys.{key}", source, tolerance)
                       for key, tol in keys.items()}


def _engine_options(raw_engines: Any, source: str) -> dict[str, dict[str, Any]]:
    if not isinstance(raw_engines, dict):
        raise _fail(source, "engines must be a table of engine = {options}")
    engines: dict[str, dict[str, Any]] = {}
    for engine, options in raw_engines.items():
        if not isinstance(options, dict):
            raise _fail(source, f"engines.{engine} must be a table")
        refuse_unknown(options, ENGINE_OPTIONS, f"engines.{engine}", source)
        if "threads" in options and (not isinstance(options["threads"], int) or options["threads"] < 1):
            raise _fail(source, f"engines.{engine}.threads must be a positive integer")
        if "dtype" in options and options["dtype"] not in ("float32", "float64"):
            raise _fail(source, f"engines.{engine}.dtype must be float32 or float64")
        if "device" in options and not isinstance(options["device"], str):
            raise _fail(source, f"engines.{engine}.device must be a string such as cpu or cuda")
        engines[engine] = dict(options)
    return engines


def recorded_spec(data: Mapping[str, Any], source: str) -> Spec:
    """The spec a manifest recorded (``Spec.to_data``), parsed back: its ``source`` record and
    absent (None) fields are not spec fields."""
    return parse_spec({k: v for k, v in data.items() if k != "source" and v is not None}, source)


def load_spec(path: Path) -> Spec:
    """Read a spec file. Errors name the file; nothing is written."""
    path = Path(path)
    raw = files.read_bytes(path, "spec file", SpecError)
    try:
        data = tomllib.loads(files.decode_utf8(raw, path, "spec file", SpecError))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    spec = parse_spec(data, source=str(path))
    return replace(spec, source=str(path.resolve()), source_sha256=hashlib.sha256(raw).hexdigest())


def with_engine_option(spec: Spec, engine: str, option: str, value: Any) -> Spec:
    """A copy of the spec with one engine option overridden (CLI flags such as --py-dtype)."""
    engines = {k: dict(v) for k, v in spec.engines.items()}
    engines.setdefault(engine, {})[option] = value
    return replace(spec, engines=engines)
