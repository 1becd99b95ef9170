"""Plan: a spec and a target profile become the list of commands to run, with the shared
argument list substituted once.

The plan is data. The runner interprets it, ``capture --dry-run`` prints it, and replay rebuilds
one from a manifest and hands it to the very same runner. Each step keeps its argv both resolved
and as a template (``{repo}``, ``{scratch}``, ``{python}`` left in), so a recorded command can be
re-run on another machine and checked against what the profile allows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from bundle.model.errors import SpecError, TargetError
from bundle.capture.spec import Spec
from bundle.capture.target import EngineProfile, TargetProfile, check_identical_arguments

# nanoBragg's default pixel: 0.1 mm.
_DEFAULT_PIXEL_MM = 0.1
_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Step:
    name: str  # unique: prepare-inputs, build-c, run-c, ...
    role: str  # "prepare" | "build" | "run"
    engine: str | None
    argv_template: tuple[str, ...]
    argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...] = ()  # set by the profile/spec, on top of the allow-listed env
    stage: tuple[tuple[str, str], ...] = ()  # (absolute source, cwd-relative destination) copied in first
    sources: tuple[tuple[str, str], ...] = ()  # (root, path) files hashed as this step's inputs
    requires: tuple[str, ...] = ()  # steps that must have succeeded before this one runs


@dataclass(frozen=True)
class Plan:
    spec: Spec
    target: TargetProfile
    repo: str
    scratch: str
    python: str
    shared_args: tuple[str, ...]
    engine_argv: Mapping[str, tuple[str, ...]]
    engine_extras: Mapping[str, tuple[str, ...]]  # what each engine adds after the shared list
    steps: tuple[Step, ...]
    image_arg: str | None  # the value of the image flag (relative to each engine's cwd), if any
    input_origin: Mapping[str, str] = field(default_factory=dict)  # input file -> "repo" | "prepare"

    def roots(self) -> dict[str, str]:
        return {"repo": self.repo, "scratch": self.scratch, "python": self.python}


def fill(template: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """Substitute ``{name}`` placeholders token by token (``str.format`` would choke on braces in
    user arguments, so only known names are replaced)."""
    out = []
    for token in template:
        for name, value in values.items():
            token = token.replace("{" + name + "}", value)
        out.append(token)
    return tuple(out)


def image_argument(args: tuple[str, ...], flag: str) -> str | None:
    """The value the shared list gives the image flag (last one wins, as in nanoBragg)."""
    value = None
    for i, token in enumerate(args):
        if token == flag:
            if i + 1 >= len(args):
                raise SpecError(f"args: {flag} is missing its value")
            value = args[i + 1]
    return value


def confine_outputs(spec: Spec, target: TargetProfile) -> None:
    """Refuse any file an engine is told to write outside its scratch directory: the capture
    takes its outputs from there, and a path of the user's (``-floatfile /home/me/img.bin``)
    would be overwritten by both engines and then carried off."""
    for flag in target.written_flags():
        for i, token in enumerate(spec.args[:-1]):
            value = spec.args[i + 1]
            if token == flag and not _inside_scratch(value):
                raise SpecError(f"{spec.source}: {flag} {value}: an output path must be relative "
                                f"and stay inside the capture's scratch directory")


def _inside_scratch(value: str) -> bool:
    path = PurePosixPath(value)
    return bool(value) and not path.is_absolute() and ".." not in path.parts and \
        not value.startswith("~")


def detector_shape(args: Sequence[str]) -> tuple[int, int] | None:
    """(slow, fast) pixel counts from a nanoBragg-style argument list, or None when unknowable.

    ``-detpixels N`` sets both, ``-detpixels_x``/``-detpixels_f`` the fast count,
    ``-detpixels_y``/``-detpixels_s`` the slow count; the last one given wins. A count not given
    is 1024 when neither ``-pixel`` nor ``-detsize*`` is given (every engine's default). With
    ``-detsize``/``-detsize_x|f``/``-detsize_y|s`` it is nanoBragg's ceil(detsize/pixel - 0.5)
    (pixel default 0.1 mm). With ``-pixel`` alone it is None: nanoBragg would derive
    ceil(102.4/pixel - 0.5) while minibragg keeps 1024. None too for a count that is not a
    positive integer. A flag with no value after it is ignored, as nanoBragg does.
    """
    args = list(args)
    counts: dict[str, int] = {}
    sizes: dict[str, float] = {}
    pixel: float | None = None
    try:
        for flag, value in zip(args, args[1:]):
            if flag in _COUNT_FLAGS:
                counts.update(dict.fromkeys(_COUNT_FLAGS[flag], _count(value)))
            elif flag in _SIZE_FLAGS:
                sizes.update(dict.fromkeys(_SIZE_FLAGS[flag], _length(value)))
            elif flag == "-pixel":
                pixel = _length(value)
    except ValueError:
        return None
    s, f = (_axis_count(counts.get(axis), sizes.get(axis), pixel) for axis in ("slow", "fast"))
    if s is None or f is None:
        return None
    return (s, f)


_COUNT_FLAGS = {"-detpixels": ("slow", "fast"), "-detpixels_x": ("fast",),
                "-detpixels_f": ("fast",), "-detpixels_y": ("slow",), "-detpixels_s": ("slow",)}
_SIZE_FLAGS = {"-detsize": ("slow", "fast"), "-detsize_x": ("fast",), "-detsize_f": ("fast",),
               "-detsize_y": ("slow",), "-detsize_s": ("slow",)}


def _count(text: str) -> int:
    if not _INT.fullmatch(text) or int(text) <= 0:
        raise ValueError(text)
    return int(text)


def _length(text: str) -> float:
    v = float(text)  # a ValueError here is an unknowable shape, as below
    if not (math.isfinite(v) and v > 0):
        raise ValueError(text)
    return v


def _axis_count(n: int | None, size_mm: float | None, pixel: float | None) -> int | None:
    if n is not None:
        return n
    if size_mm is None and pixel is None:
        return 1024
    if size_mm is None:
        return None  # -pixel alone: nanoBragg and minibragg disagree
    # As nanoBragg: metres, then ceil(detsize/pixel - 0.5).
    n = math.ceil((size_mm / 1000.0) / ((pixel or _DEFAULT_PIXEL_MM) / 1000.0) - 0.5)
    return n if n > 0 else None


def build_plan(
    spec: Spec,
    target: TargetProfile,
    repo: Path,
    scratch: Path,
    python: str,
    input_origin: Mapping[str, str],
    engines: tuple[str, ...] | None = None,
    prebuilt: Mapping[str, str] | None = None,
) -> Plan:
    """Pure: every path is given; nothing is read or run.

    ``input_origin`` says for each spec input whether it comes from the repo or from the spec's
    prepare command. ``engines`` restricts which engines run (``--c-only``/``--py-only``);
    ``prebuilt`` maps an engine to a binary used instead of building it (``--c-bin``).
    """
    prebuilt = dict(prebuilt or {})
    confine_outputs(spec, target)
    wanted = engines or tuple(e.name for e in target.engines)
    for name in (*wanted, *spec.engines):
        target.engine(name)  # raises TargetError for an unknown engine
    repo_s, scratch_s = str(repo), str(scratch)
    inputs_dir = f"{scratch_s}/inputs"
    roots = {"repo": repo_s, "scratch": scratch_s, "python": python}
    steps: list[Step] = []

    if any(origin == "prepare" for origin in input_origin.values()):
        steps.append(_prepare_step(spec, roots))

    stage = tuple(
        ((f"{repo_s}/{f}" if input_origin.get(f) == "repo" else f"{inputs_dir}/{f}"), f)
        for f in spec.inputs.files
    )
    input_sources = tuple(("repo" if input_origin.get(f) == "repo" else "input", f)
                          for f in spec.inputs.files)
    engine_argv: dict[str, tuple[str, ...]] = {}
    extras: dict[str, tuple[str, ...]] = {}
    run_steps: list[Step] = []
    after_prepare = ("prepare-inputs",) if steps else ()
    for profile in target.engines:
        if profile.name not in wanted:
            continue
        extra, env = _engine_additions(spec, target, profile)
        extras[profile.name] = extra
        build, run = _engine_steps(profile, spec, roots, prebuilt.get(profile.name), extra, env,
                                   stage, input_sources, after_prepare)
        steps += [build] if build is not None else []
        engine_argv[profile.name] = run.argv
        run_steps.append(run)
    check_identical_arguments(target, spec.args, extras)
    return Plan(
        spec=spec, target=target, repo=repo_s, scratch=scratch_s, python=python,
        shared_args=spec.args, engine_argv=engine_argv, engine_extras=extras,
        steps=tuple(steps + run_steps), image_arg=image_argument(spec.args, target.image_flag),
        input_origin=dict(input_origin),
    )


def _prepare_step(spec: Spec, roots: Mapping[str, str]) -> Step:
    template = tuple(t.replace("{inputs}", "{scratch}/inputs") for t in spec.inputs.prepare)
    return Step(
        name="prepare-inputs", role="prepare", engine=None, argv_template=template,
        argv=fill(template, roots), cwd=f"{roots['scratch']}/inputs",
        env=(("PYTHONPATH", roots["repo"]), ("PYTHONDONTWRITEBYTECODE", "1")),
        sources=module_sources(template),
    )


def module_sources(template: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The repo files a ``{python} -m a.b`` command runs from: a/b.py or a/b/__main__.py (the
    runner hashes whichever exists, with its package's *.py), so the manifest says which code
    made the inputs and the cache can key on it. Nothing for any other kind of command."""
    if len(template) < 3 or template[0] != "{python}" or template[1] != "-m":
        return ()
    base = template[2].replace(".", "/")
    return (("repo", f"{base}.py"), ("repo", f"{base}/__main__.py"))


def _engine_additions(spec: Spec, target: TargetProfile,
                      profile: EngineProfile) -> tuple[tuple[str, ...], dict[str, str]]:
    """What one engine adds to the shared arguments (the trace flag, its option flags) and its
    environment (option variables)."""
    extra: list[str] = []
    if spec.pixel is not None:
        extra += fill(profile.trace, {"slow": str(spec.pixel[0]), "fast": str(spec.pixel[1])})
    env: dict[str, str] = {k: v for k, v in profile.env.items()}
    for option, value in spec.engines.get(profile.name, {}).items():
        if option in profile.option_flags:
            extra += fill(profile.option_flags[option], {"value": str(value)})
        elif option in profile.option_env:
            env[profile.option_env[option]] = str(value)
        else:
            known = ", ".join(sorted({**profile.option_flags, **profile.option_env})) or "none"
            raise TargetError(f"target {target.name}: engine {profile.name} has no option "
                              f"{option!r} (it knows {known})")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never drop __pycache__ into the user's repo
    return tuple(extra), env


def _engine_steps(profile: EngineProfile, spec: Spec, roots: Mapping[str, str],
                  prebuilt: str | None, extra: tuple[str, ...], env: Mapping[str, str],
                  stage: tuple, input_sources: tuple,
                  requires: tuple[str, ...]) -> tuple[Step | None, Step]:
    """One engine's build step (None when prebuilt or nothing to build) and its run step."""
    values = {**roots, "build": "{scratch}/build"}
    build = None
    if prebuilt is not None:
        program: tuple[str, ...] = (prebuilt,)
    else:
        program = fill(profile.program_template(), {"build": "{scratch}/build"})
        if profile.build:
            b_template = fill(profile.build, {"build": "{scratch}/build"})
            build = Step(
                name=f"build-{profile.name}", role="build", engine=profile.name,
                argv_template=b_template, argv=fill(b_template, values),
                cwd=f"{roots['scratch']}/build",
                sources=tuple(("repo", s) for s in profile.sources),
            )
            requires = requires + (build.name,)
    template = program + spec.args + extra
    run = Step(
        name=f"run-{profile.name}", role="run", engine=profile.name,
        argv_template=template, argv=fill(template, values), cwd=f"{roots['scratch']}/{profile.name}",
        env=tuple(sorted(fill_env(env, values).items())), stage=stage,
        sources=input_sources + (() if profile.build else tuple(("repo", s) for s in profile.sources)),
        requires=requires,
    )
    return build, run


def fill_env(env: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    return {k: fill((v,), values)[0] for k, v in env.items()}


def resolve_inputs(spec: Spec, repo: Path) -> dict[str, str]:
    """Where each input comes from: the repo when it has the file, else the prepare command.

    The one place a plan looks at the disk, kept out of build_plan so that stays pure.
    """
    origin: dict[str, str] = {}
    for f in spec.inputs.files:
        if (repo / f).is_file():
            origin[f] = "repo"
        elif spec.inputs.prepare:
            origin[f] = "prepare"
        else:
            raise SpecError(f"{spec.source}: input file {f} not found in the repo ({repo / f}) "
                            f"and the spec has no inputs.prepare command to make it")
    return origin


def describe(plan: Plan) -> list[str]:
    """The plan as shell-like lines, for --dry-run."""
    import shlex

    lines = [f"# spec {plan.spec.name} · target {plan.target.name} · repo {plan.repo}",
             f"# shared arguments sha256 {plan.spec.args_sha256()}"]
    for step in plan.steps:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in step.env)
        lines.append(f"[{step.name}] (cd {shlex.quote(step.cwd)} && "
                     f"{env + ' ' if env else ''}{shlex.join(step.argv)})")
    return lines
