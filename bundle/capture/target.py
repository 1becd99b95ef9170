"""Target profiles: how to build and run each engine for one repo layout.

A profile is data (TOML), never code: built-in ones live in ``bundle/profiles/`` and a user may
point ``--target`` at their own file. Templates use placeholders that the plan fills in once:
``{repo}``, ``{build}``, ``{python}``, ``{args}``, ``{slow}``, ``{fast}``, ``{value}``.

The identical-arguments rule is enforced here, where a profile is read: a run template must hold
``{args}`` exactly once and nothing after it, and no trace or option flag may be one the shared
argument list already sets. Anything else could make one engine see a different command line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from bundle.model.errors import TargetError
from bundle.model.records import KeyGraph

BUILTIN = ("minibragg", "nanobragg")
PROFILE_FIELDS = {"name", "description", "image_flag", "output_flags", "engines", "graph"}
GRAPH_FIELDS = {"keys", "parents", "amplification"}
ENGINE_FIELDS = {"name", "prefix", "build", "sources", "run", "trace", "env", "option_flags",
                 "option_env"}


@dataclass(frozen=True)
class EngineProfile:
    name: str
    prefix: str
    run: tuple[str, ...]
    trace: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # repo-relative files hashed into the record (what the engine is)
    env: Mapping[str, str] = field(default_factory=dict)
    option_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    option_env: Mapping[str, str] = field(default_factory=dict)

    def program_template(self) -> tuple[str, ...]:
        """The part of the run template before ``{args}``: how the engine is invoked."""
        return self.run[: self.run.index("{args}")]


@dataclass(frozen=True)
class TargetProfile:
    name: str
    engines: tuple[EngineProfile, ...]  # the first is the reference the others are compared with
    description: str = ""
    image_flag: str = "-floatfile"
    source: str = ""
    graph: KeyGraph | None = None  # what each trace key is computed from (bundle.analysis.roots)
    output_flags: tuple[str, ...] = ()  # flags besides image_flag whose value an engine writes

    def written_flags(self) -> tuple[str, ...]:
        """Every flag whose value names a file an engine writes (kept inside the scratch)."""
        return (self.image_flag, *self.output_flags)

    def engine(self, name: str) -> EngineProfile:
        for e in self.engines:
            if e.name == name:
                return e
        raise TargetError(f"target {self.name}: no engine named {name!r} "
                          f"(it has {', '.join(e.name for e in self.engines)})")

    def to_data(self) -> dict:
        data = self._engines_data()
        if self.output_flags:  # only when declared, so older manifests keep their shape
            data["output_flags"] = list(self.output_flags)
        if self.graph is not None:  # a custom profile is replayed from this: keep its graph
            g = self.graph
            data["graph"] = {"keys": list(g.keys), "amplification": g.amplification,
                             "parents": {k: list(v) for k, v in g.parents.items()}}
        return data

    def _engines_data(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "image_flag": self.image_flag,
            "source": self.source,
            "engines": [
                {
                    "name": e.name, "prefix": e.prefix, "run": list(e.run), "trace": list(e.trace),
                    "build": list(e.build), "sources": list(e.sources), "env": dict(e.env),
                    "option_flags": {k: list(v) for k, v in e.option_flags.items()},
                    "option_env": dict(e.option_env),
                }
                for e in self.engines
            ],
        }


def _strings(value: Any, where: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TargetError(f"{source}: {where} must be a list of strings")
    return tuple(value)


def _str_map(value: Any, where: str, source: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TargetError(f"{source}: {where} must be a table of strings")
    return dict(value)


def parse_profile(data: Mapping[str, Any], source: str = "<profile>") -> TargetProfile:
    """Plain data -> TargetProfile, or TargetError naming the field."""
    extra = sorted(set(data) - PROFILE_FIELDS)
    if extra:
        raise TargetError(f"{source}: unknown field {extra[0]}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise TargetError(f"{source}: missing required field name")
    raw_engines = data.get("engines")
    if not isinstance(raw_engines, list) or len(raw_engines) < 2:
        raise TargetError(f"{source}: engines must list at least two [[engines]] tables")
    engines = []
    for i, raw in enumerate(raw_engines):
        where = f"engines[{i}]"
        if not isinstance(raw, dict):
            raise TargetError(f"{source}: {where} must be a table")
        _refuse_unknown(raw, ENGINE_FIELDS, f"{source}: unknown field {where}.")
        for req in ("name", "prefix", "run"):
            if req not in raw:
                raise TargetError(f"{source}: missing required field {where}.{req}")
        run = _strings(raw["run"], f"{where}.run", source)
        if run.count("{args}") != 1:
            raise TargetError(f"{source}: {where}.run must contain {{args}} exactly once")
        if run[-1] != "{args}":
            # Flags appended after the shared list would make the engines' command lines differ.
            raise TargetError(f"{source}: {where}.run may not add anything after {{args}} "
                              f"(both engines must get the identical argument list)")
        flags = raw.get("option_flags", {})
        if not isinstance(flags, dict):
            raise TargetError(f"{source}: {where}.option_flags must be a table")
        engines.append(EngineProfile(
            name=str(raw["name"]),
            prefix=str(raw["prefix"]),
            run=run,
            trace=_strings(raw.get("trace", []), f"{where}.trace", source),
            build=_strings(raw.get("build", []), f"{where}.build", source),
            sources=_strings(raw.get("sources", []), f"{where}.sources", source),
            env=_str_map(raw.get("env", {}), f"{where}.env", source),
            option_flags={k: _strings(v, f"{where}.option_flags.{k}", source) for k, v in flags.items()},
            option_env=_str_map(raw.get("option_env", {}), f"{where}.option_env", source),
        ))
    names = [e.name for e in engines]
    if len(set(names)) != len(names):
        raise TargetError(f"{source}: engine names must be unique, got {names}")
    return TargetProfile(
        name=data["name"],
        engines=tuple(engines),
        description=str(data.get("description", "")),
        image_flag=str(data.get("image_flag", "-floatfile")),
        output_flags=_strings(data.get("output_flags", []), "output_flags", source),
        source=source,
        graph=parse_graph(data["graph"], data["name"], source) if "graph" in data else None,
    )


def _refuse_unknown(raw: dict, allowed: set[str], message: str) -> None:
    """A profile field we do not know is refused (a typo must not silently drop a setting)."""
    extra = sorted(set(raw) - allowed)
    if extra:
        raise TargetError(message + extra[0])


def parse_graph(raw: Any, name: str, source: str) -> KeyGraph:
    """A profile's [graph] table -> KeyGraph: ``keys`` (the schema, in pipeline order),
    ``parents`` (key = [parent keys]) and an optional ``amplification``. A key the schema lacks
    or a cycle is a TargetError naming the profile and the key."""
    where = f"{source}: target {name}: graph"
    if not isinstance(raw, dict):
        raise TargetError(f"{where} must be a table")
    _refuse_unknown(raw, GRAPH_FIELDS, f"{where}: unknown field ")
    keys = _strings(raw.get("keys"), "graph.keys", source)
    table = raw.get("parents", {})
    if not isinstance(table, dict):
        raise TargetError(f"{where}.parents must be a table of key = [parent keys]")
    parents = {k: _strings(v, f"graph.parents.{k}", source) for k, v in table.items()}
    schema = set(keys)
    for k, ps in parents.items():
        unknown = next((x for x in (k, *ps) if x not in schema), None)
        if unknown is not None:
            raise TargetError(f"{where} names key {unknown}, which graph.keys does not have")
    cyclic = _cycle_key(keys, parents)
    if cyclic is not None:
        raise TargetError(f"{where} has a cycle through key {cyclic}")
    amp = raw.get("amplification", 1000.0)
    if isinstance(amp, bool) or not isinstance(amp, (int, float)) or not amp > 0:
        raise TargetError(f"{where}.amplification must be a positive number")
    return KeyGraph(keys=keys, parents=parents, amplification=float(amp), source=source)


def _cycle_key(keys: tuple[str, ...], parents: Mapping[str, tuple[str, ...]]) -> str | None:
    """A key on a cycle of the parent relation, or None (iterative depth-first search)."""
    colour: dict[str, int] = {}  # 1 on the current path, 2 finished
    for start in keys:
        if colour.get(start):
            continue
        stack = [(start, iter(parents.get(start, ())))]
        colour[start] = 1
        while stack:
            key, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[key] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return nxt
            elif not colour.get(nxt):
                colour[nxt] = 1
                stack.append((nxt, iter(parents.get(nxt, ()))))
    return None


def load_target(name_or_path: str) -> TargetProfile:
    """A built-in profile by name, or a profile TOML file by path."""
    if name_or_path in BUILTIN:
        text = resources.files("bundle.capture").joinpath(f"profiles/{name_or_path}.toml").read_text()
        return parse_profile(tomllib.loads(text), source=f"builtin:{name_or_path}")
    path = Path(name_or_path)
    if not path.is_file():
        raise TargetError(f"--target {name_or_path}: neither a built-in target "
                          f"({', '.join(BUILTIN)}) nor a profile file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: not valid TOML ({exc})") from None
    return parse_profile(data, source=str(path.resolve()))


def _is_flag(token: str) -> bool:
    return len(token) > 1 and token[0] == "-" and token[1].isalpha()


def check_identical_arguments(profile: TargetProfile, shared: tuple[str, ...],
                              extras: Mapping[str, tuple[str, ...]]) -> None:
    """Refuse per-engine additions that would override a flag the shared list already sets.

    ``extras`` maps engine name -> the tokens it adds after the shared list (trace flag, options).
    """
    shared_flags = {t for t in shared if _is_flag(t)}
    for engine, tokens in extras.items():
        clash = sorted(shared_flags & {t for t in tokens if _is_flag(t)})
        if clash:
            raise TargetError(
                f"target {profile.name}: engine {engine} would add {clash[0]}, which the shared "
                f"argument list already sets; the engines must get identical arguments")


def recorded_profile(target: Mapping[str, Any], source: str) -> TargetProfile:
    """The profile a manifest recorded (its ``target`` section), parsed back; its ``source``
    record is not a profile field. Callers decide whether a non-built-in one may be used."""
    profile = {k: v for k, v in target.get("profile", {}).items() if k != "source"}
    return parse_profile(profile, source=source)
