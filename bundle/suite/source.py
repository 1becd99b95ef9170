"""Suite files: our TOML suite format and the upstream YAML matrix (``tests/parity_cases.yaml``),
read into a bundle.suite.model.Suite.

``load_suite(path)`` is the I/O edge; ``parse_suite_toml`` and ``parse_suite_yaml`` are pure
functions over the parsed plain data. The two formats differ on purpose in how they treat what
they do not know: our TOML is validated like a capture spec (an unknown field is refused, so a
typo never silently drops a threshold), while the upstream YAML is the user's own file, read as it
is: its unknown fields are kept (Case.unknown, Run.unknown, Suite.unknown) and shown, never refused.

Every error is one line naming the file, the case (and run) and the field, as a SpecError.
"""

from __future__ import annotations

import hashlib
import math
import shlex
import tomllib
from pathlib import Path
from typing import Any, Mapping

from bundle.capture.spec import parse_spec, refuse_unknown
from bundle.model import files
from bundle.model.errors import SpecError
from bundle.suite.model import THRESHOLD_METRICS, Case, Run, Suite, Thresholds

SUITE_FIELDS = {"name", "target", "description", "inputs", "tolerance", "engines", "thresholds",
                "pixel", "cases"}
CASE_FIELDS = {"id", "description", "args", "pixel", "thresholds", "runs"}
RUN_FIELDS = {"name", "args", "pixel", "thresholds", "description"}
SPEC_DEFAULTS = ("inputs", "tolerance", "engines")  # passed on to every member spec as they are
YAML_CASE_FIELDS = {"id", "description", "base_args", "thresholds", "runs"}
YAML_RUN_FIELDS = {"name", "extra_args", "thresholds", "description"}
YAML_TARGET = "nanobragg"  # the upstream matrix is a nanoBragg checkout's
DEFAULT_RUN = "default"  # the one run of a case that lists none


def _where(source: str, case: str | None = None, run: str | None = None) -> str:
    out = source
    if case is not None:
        out += f": case {case}"
    if run is not None:
        out += f" run {run}"
    return out


def _fail(where: str, message: str) -> SpecError:
    return SpecError(files.one_line(f"{where}: {message}"))


def _table(value: Any, field: str, where: str) -> Mapping:
    if not isinstance(value, dict):
        raise _fail(where, f"{field} must be a table")
    return value


def _string(value: Any, field: str, where: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"{field} must be a non-empty string" if required
                    else f"{field} must be a string")
    return value.strip() if required else value


def _string_list(value: Any, field: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{field} must be a list of strings")
    return tuple(value)


def parse_thresholds(value: Any, field: str, where: str) -> Thresholds:
    """A table of threshold name -> finite number; unknown names refused in both formats (a
    misspelt ``corr_mn`` would otherwise judge nothing)."""
    table = _table(value, field, where)
    limits = {}
    for name, limit in table.items():
        if name not in THRESHOLD_METRICS:
            raise _fail(where, f"unknown threshold {field}.{name} "
                        f"(known: {', '.join(sorted(THRESHOLD_METRICS))})")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit):
            raise _fail(where, f"{field}.{name} must be a finite number, got {limit!r}")
        limits[name] = float(limit)
    return Thresholds(tuple(sorted(limits.items())))


def _pixel(value: Any, field: str, where: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise _fail(where, f"{field} must be [slow, fast], two non-negative integers, got {value!r}")
    return (value[0], value[1])


def _run_args(args: tuple[str, ...], where: str) -> tuple[str, ...]:
    if not args:
        raise _fail(where, "args: the run has no arguments (the case's and the run's are both empty)")
    return args


def _label(raw: Any, key: str, index: int) -> str:
    """How an error names a case or run: its id/name when it has a usable one, else #n."""
    value = raw.get(key) if isinstance(raw, dict) else None
    return str(value).strip() if isinstance(value, (str, int)) and str(value).strip() else f"#{index + 1}"


def _unique(items: list, what: str, where_of) -> None:
    seen: set[str] = set()
    for key, where in where_of(items):
        if key in seen:
            raise _fail(where, f"duplicated {what} {key!r}")
        seen.add(key)


# ---- our TOML format -------------------------------------------------------------------------

def _spec_defaults(data: Mapping, source: str, target: str) -> dict[str, Any]:
    """inputs/tolerance/engines as a spec would say them, checked by the spec parser itself so a
    suite's errors are a spec's errors."""
    defaults = {k: data[k] for k in SPEC_DEFAULTS if k in data}
    parse_spec({"name": "suite", "target": target, "args": ["-"], **defaults}, source)
    return defaults


def _toml_run(raw: Any, case_id: str, case_args: tuple[str, ...], base: Thresholds,
              case_pixel, source: str, index: int) -> Run:
    where = _where(source, case_id, _label(raw, "name", index))
    raw = _table(raw, "runs entry", where)
    refuse_unknown(raw, RUN_FIELDS, "", where)
    name = _string(raw.get("name"), "name", where, required=True)
    where = _where(source, case_id, name)
    args = case_args + _string_list(raw.get("args", []), "args", where)
    pixel = _pixel(raw["pixel"], "pixel", where) if "pixel" in raw else case_pixel
    over = parse_thresholds(raw["thresholds"], "thresholds", where) if "thresholds" in raw else Thresholds()
    return Run(case=case_id, name=name, args=_run_args(args, where), pixel=pixel,
               thresholds=base.merged(over),
               description=_string(raw.get("description", ""), "description", where))


def _toml_case(raw: Any, defaults: Thresholds, default_pixel, source: str, index: int) -> Case:
    where = _where(source, _label(raw, "id", index))
    raw = _table(raw, "cases entry", where)
    refuse_unknown(raw, CASE_FIELDS, "", where)
    case_id = _string(raw.get("id"), "id", where, required=True)
    where = _where(source, case_id)
    args = _string_list(raw.get("args", []), "args", where)
    pixel = _pixel(raw["pixel"], "pixel", where) if "pixel" in raw else default_pixel
    base = defaults.merged(parse_thresholds(raw["thresholds"], "thresholds", where)
                           if "thresholds" in raw else Thresholds())
    description = _string(raw.get("description", ""), "description", where)
    raw_runs = raw.get("runs")
    if raw_runs is None:
        runs = (Run(case=case_id, name=DEFAULT_RUN, args=_run_args(args, _where(source, case_id, DEFAULT_RUN)),
                    pixel=pixel, thresholds=base),)
    elif not isinstance(raw_runs, list) or not raw_runs:
        raise _fail(where, "runs must be a non-empty list of [[cases.runs]] tables")
    else:
        runs = tuple(_toml_run(r, case_id, args, base, pixel, source, i) for i, r in enumerate(raw_runs))
    _unique(list(runs), "run name", lambda rs: ((r.name, _where(source, case_id, r.name)) for r in rs))
    return Case(id=case_id, description=description, runs=runs)


def parse_suite_toml(data: Mapping[str, Any], source: str, sha256: str) -> Suite:
    """Our TOML suite format's plain data (as tomllib returns it) -> Suite, or SpecError."""
    refuse_unknown(data, SUITE_FIELDS, "", source)
    name = _string(data.get("name"), "name", source, required=True)
    target = _string(data.get("target"), "target", source, required=True)
    _string(data.get("description", ""), "description", source)
    defaults = (parse_thresholds(data["thresholds"], "thresholds", source)
                if "thresholds" in data else Thresholds())
    pixel = _pixel(data["pixel"], "pixel", source) if "pixel" in data else None
    spec_defaults = _spec_defaults(data, source, target)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise _fail(source, "cases must be a non-empty list of [[cases]] tables")
    cases = tuple(_toml_case(c, defaults, pixel, source, i) for i, c in enumerate(raw_cases))
    _unique(list(cases), "case id", lambda cs: ((c.id, _where(source, c.id)) for c in cs))
    return Suite(name=name, target=target, source=source, source_sha256=sha256, format="toml",
                 cases=cases, spec_defaults=spec_defaults)


# ---- the upstream YAML ---------------------------------------------------------------------

def _shell_words(value: Any, field: str, where: str) -> tuple[str, ...]:
    """A shell-quoted string split with shlex (a list of strings is taken as already split)."""
    if value is None:
        return ()
    if isinstance(value, list):
        return _string_list(value, field, where)
    if not isinstance(value, str):
        raise _fail(where, f"{field} must be a shell-quoted string, got {value!r}")
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:
        raise _fail(where, f"{field} is not a valid shell-quoted string ({exc})") from None


def _yaml_run(raw: Any, case_id: str, base_args: tuple[str, ...], base: Thresholds,
              source: str, index: int) -> Run:
    where = _where(source, case_id, f"#{index + 1}")
    raw = _table(raw, "runs entry", where)
    name = raw.get("name")
    name = str(name) if isinstance(name, (str, int)) and str(name).strip() else None
    if name is None:
        raise _fail(where, "name must be a non-empty string")
    where = _where(source, case_id, name)
    args = base_args + _shell_words(raw.get("extra_args"), "extra_args", where)
    over = parse_thresholds(raw["thresholds"], "thresholds", where) if "thresholds" in raw else Thresholds()
    return Run(case=case_id, name=name, args=_run_args(args, where), thresholds=base.merged(over),
               description=_string(raw.get("description", ""), "description", where),
               unknown={k: v for k, v in raw.items() if k not in YAML_RUN_FIELDS})


def _yaml_case(raw: Any, source: str, index: int) -> Case:
    where = _where(source, f"#{index + 1}")
    raw = _table(raw, "cases entry", where)
    case_id = raw.get("id")
    if not isinstance(case_id, (str, int)) or not str(case_id).strip():
        raise _fail(where, "id must be a non-empty string")
    case_id = str(case_id).strip()
    where = _where(source, case_id)
    base_args = _shell_words(raw.get("base_args"), "base_args", where)
    base = parse_thresholds(raw["thresholds"], "thresholds", where) if "thresholds" in raw else Thresholds()
    raw_runs = raw.get("runs")
    if raw_runs is None:
        runs = (Run(case=case_id, name=DEFAULT_RUN,
                    args=_run_args(base_args, _where(source, case_id, DEFAULT_RUN)), thresholds=base),)
    elif not isinstance(raw_runs, list) or not raw_runs:
        raise _fail(where, "runs must be a non-empty list")
    else:
        runs = tuple(_yaml_run(r, case_id, base_args, base, source, i) for i, r in enumerate(raw_runs))
    _unique(list(runs), "run name", lambda rs: ((r.name, _where(source, case_id, r.name)) for r in rs))
    description = raw.get("description", "")
    return Case(id=case_id, description=description if isinstance(description, str) else str(description),
                runs=runs, unknown={k: v for k, v in raw.items() if k not in YAML_CASE_FIELDS})


def parse_suite_yaml(data: Any, source: str, sha256: str, target: str | None = None) -> Suite:
    """The upstream matrix's plain data (as yaml.safe_load returns it) -> Suite, or SpecError.
    The suite is named after the file; ``target`` defaults to nanobragg."""
    if not isinstance(data, dict):
        raise _fail(source, "expected a mapping with a cases list at the top")
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise _fail(source, "cases must be a non-empty list")
    cases = tuple(_yaml_case(c, source, i) for i, c in enumerate(raw_cases))
    _unique(list(cases), "case id", lambda cs: ((c.id, _where(source, c.id)) for c in cs))
    return Suite(name=Path(source).stem, target=target or YAML_TARGET, source=source,
                 source_sha256=sha256, format="yaml", cases=cases,
                 unknown={str(k): v for k, v in data.items() if k != "cases"})


def unknown_fields(suite: Suite) -> dict[str, dict[str, Any]]:
    """The kept (YAML) fields we do not read, by where they stand: "" (top level), a case id, or
    case/run; the ``unknown_fields`` of suite.json and what show and the report list."""
    out: dict[str, dict[str, Any]] = {}
    if suite.unknown:
        out[""] = dict(suite.unknown)
    for case in suite.cases:
        if case.unknown:
            out[case.id] = dict(case.unknown)
        for run in case.runs:
            if run.unknown:
                out[run.id] = dict(run.unknown)
    return out


# ---- the file ------------------------------------------------------------------------------

def load_suite(path: Path, target: str | None = None) -> Suite:
    """Read a suite file, its format chosen by extension (.toml; .yaml/.yml). ``target``
    overrides the file's (TOML) or the default nanobragg (YAML). Errors name the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SpecError(f"{path}: a suite file ends in .toml (our format) or .yaml/.yml (upstream)")
    raw = files.read_bytes(path, "suite file", SpecError)
    text = files.decode_utf8(raw, path, "suite file", SpecError)
    sha256 = hashlib.sha256(raw).hexdigest()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _fail(str(path), f"not valid TOML ({exc})") from None
        suite = parse_suite_toml(data, str(path), sha256)
        return suite if target is None else _retarget(suite, target)
    return parse_suite_yaml(_yaml_data(text, path), str(path), sha256, target)


def _yaml_data(text: str, path: Path) -> Any:
    import yaml  # only a YAML suite needs it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(str(path), f"not valid YAML ({exc})") from None
    except RecursionError:
        raise _fail(str(path), "not valid YAML (nested too deeply)") from None


def _retarget(suite: Suite, target: str) -> Suite:
    from dataclasses import replace

    return replace(suite, target=target)
