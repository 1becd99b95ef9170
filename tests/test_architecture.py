"""The house rules, checked on the source: imports go one way, down the layers; nobody imports
another module's private names; no function in bundle/ or cli/ is longer than 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Lower rank = lower layer. A module may import its own package and anything of lower rank.
RANK = {"bundle.model": 0, "bundle.analysis": 1, "bundle.capture": 2, "bundle.present": 3,
        "bundle.store": 4, "bundle.ledger": 5, "bundle.container": 5, "bundle.pipeline": 6,
        "bundle.replay": 7, "bundle.suite": 8, "bundle.diff": 9, "bundle.gate": 10,
        "bundle.bisect": 10, "cli": 11}
MAX_FUNCTION_LINES = 60


def _layer(module: str) -> str | None:
    return max((k for k in RANK if module == k or module.startswith(k + ".")), key=len,
               default=None)


def _sources():
    for top in ("bundle", "cli"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.AST):
    """(module, names) for every import, at any depth (lazy imports count too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def test_imports_go_down_the_layers():
    upward = []
    for module, path, tree in _sources():
        here = _layer(module)
        if here is None:
            continue
        for target, names in _imports(tree):
            candidates = [target] + [f"{target}.{n}" for n in names]
            for cand in candidates:
                there = _layer(cand)
                if there is None or there == here:
                    continue
                if RANK[there] >= RANK[here]:
                    upward.append(f"{path.relative_to(REPO)}: imports {cand} ({there} is not "
                                  f"below {here})")
    assert not upward, "\n".join(upward)


def test_no_import_of_another_modules_private_names():
    private = []
    for module, path, tree in _sources():
        for target, names in _imports(tree):
            if target == module:
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    private.append(f"{path.relative_to(REPO)}: from {target} import {n}")
    assert not private, "\n".join(private)


def test_no_function_over_60_lines():
    long = []
    for _module, path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_only_the_seam_imports_docker():
    importers = [str(path.relative_to(REPO)) for _m, path, tree in _sources()
                 if any(t == "docker" or t.startswith("docker.") for t, _ in _imports(tree))]
    assert importers == ["bundle/container/docker_seam.py"]


def _module_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (at any depth, lazy imports too). ``from pkg
    import mod`` counts as importing pkg.mod when that is a module."""
    sources = list(_sources())
    known = {module for module, _p, _t in sources}
    graph: dict[str, set[str]] = {}
    for module, _path, tree in sources:
        deps = set()
        for target, names in _imports(tree):
            subs = {f"{target}.{n}" for n in names} & known
            deps |= subs or ({target} & known)
        graph[module] = deps - {module}
    return graph


def test_no_two_modules_import_each_other():
    graph = _module_graph()
    cycles = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                     if a in graph.get(b, ())})
    assert not cycles, "\n".join(f"{a} <-> {b}" for a, b in cycles)


def test_the_module_graph_sees_lazy_imports():
    # The cycle check is only as good as the graph: a lazy import inside a function must show.
    graph = _module_graph()
    assert "bundle.analysis.metrics" in graph["bundle.pipeline"]
    assert "bundle.analysis.numbers" in graph["bundle.analysis.chain"]


def test_every_package_is_installed():
    """pyproject lists packages by name: a new sub-package missing there is absent from the
    installed tool and the images (a replay inside the container once failed on bundle.suite)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts)
             for top in ("bundle", "cli", "minibragg") for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"
