"""Root classification on the key graph: hypothesis properties, graph errors, JSON, layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bundle.analysis.compare import compare_traces, summary_json
from bundle.analysis.roots import classify
from bundle.capture.target import load_target
from bundle.model.records import KeyGraph, Tolerance, Trace, TraceEntry
from bundle.present.keygraph import key_graph_layout

REPO = Path(__file__).resolve().parent.parent


def _trace(prefix: str, values: dict[str, float]) -> Trace:
    return Trace(prefix=prefix, entries=tuple(
        TraceEntry(key=k, occurrence=0, position=i, line_no=i + 1, tokens=(repr(v),),
                   values=(v,), is_int=(False,)) for i, (k, v) in enumerate(values.items())))


@st.composite
def dags_with_errors(draw, with_edges: bool = True):
    n = draw(st.integers(1, 14))
    keys = [f"k{i}" for i in range(n)]
    parents = {}
    if with_edges:
        for i in range(1, n):
            ps = draw(st.lists(st.sampled_from(keys[:i]), max_size=3, unique=True))
            if ps:
                parents[keys[i]] = tuple(ps)
    # per-key relative error: 0 (exact), tiny (within 1e-6) or up to 10x
    errs = draw(st.lists(st.sampled_from([0.0, 1e-9, 1e-5, 1e-3, 0.5, 9.0]), min_size=n, max_size=n))
    return KeyGraph(keys=tuple(keys), parents=parents), dict(zip(keys, errs))


def _classified(graph, errs):
    ref = _trace("R:", {k: 1.0 for k in graph.keys})
    cand = _trace("C:", {k: 1.0 + e for k, e in errs.items()})
    return classify(compare_traces(ref, cand, "c", "py", Tolerance(rtol=1e-6)), graph)


@settings(max_examples=200, deadline=None)
@given(dags_with_errors())
def test_every_divergent_key_has_exactly_one_class(case):
    graph, errs = case
    report = _classified(graph, errs)
    beyond = {k for k, e in errs.items() if e > 1e-6}
    for k in report.keys:
        if k.key in beyond:
            assert k.klass in ("root", "amplified", "carried")
        else:
            assert k.klass == "match"  # no key within tolerance is classified
    assert {k.key for k in report.keys} == set(graph.keys)
    for k in report.of("carried"):  # a carried key names at least one cause upstream
        assert k.causes and all(c in beyond for c in k.causes)


@settings(max_examples=100, deadline=None)
@given(dags_with_errors(with_edges=False))
def test_without_edges_the_roots_are_exactly_the_divergent_keys(case):
    graph, errs = case
    report = _classified(graph, errs)
    assert {k.key for k in report.of("root")} == {k for k, e in errs.items() if e > 1e-6}
    assert not report.of("carried") and not report.of("amplified")


def test_amplified_carried_and_root_by_size():
    graph = KeyGraph(keys=("a", "b", "c", "d"), parents={"b": ("a",), "c": ("a",), "d": ("c",)},
                     amplification=1000)
    report = _classified(graph, {"a": 1e-5, "b": 0.5, "c": 1e-5, "d": 0.0})
    got = {k.key: k.klass for k in report.keys}
    assert got == {"a": "root", "b": "amplified", "c": "carried", "d": "match"}
    b = next(k for k in report.keys if k.key == "b")
    assert b.worst_parent == "a" and b.factor > 1000
    assert next(k for k in report.keys if k.key == "c").causes == ("a",)
    # the same numbers with a larger A: b is carried too
    assert {k.key: k.klass for k in classify(
        compare_traces(_trace("R:", {k: 1.0 for k in "abcd"}),
                       _trace("C:", {"a": 1 + 1e-5, "b": 1.5, "c": 1 + 1e-5, "d": 1.0}),
                       "c", "py"), graph, amplification=1e6).keys}["b"] == "carried"


def test_no_graph_every_divergence_is_a_root_and_json_says_so():
    ref = _trace("R:", {"x": 1.0, "y": 2.0})
    cand = _trace("C:", {"x": 1.5, "y": 2.0})
    cmp = compare_traces(ref, cand)
    report = classify(cmp, None)
    data = summary_json(cmp, report)
    assert [r["key"] for r in data["roots"]] == ["x"]
    assert data["roots"][0]["py"] == 1.5 and "no graph" in data["roots"][0]["reason"]
    assert data["key_graph"]["given"] is False
    assert data["min_rtol"] == {"x": 1 / 3, "y": 0.0}
    assert set(data["chain"]["attribution"] or {}) <= {"explained_ratio", "final_ratio",
                                                        "residual", "explained_by", "unexplained"}
    json.dumps(data)


def test_min_rtol_is_the_smallest_matching_rtol():
    ref = _trace("R:", {"x": 1.0})
    cand = _trace("C:", {"x": 1.0 + 1e-4})
    k = classify(compare_traces(ref, cand), None).keys[0]
    assert compare_traces(ref, cand, tolerance=Tolerance(rtol=k.min_rtol)).first_divergence is None
    assert compare_traces(ref, cand, tolerance=Tolerance(rtol=k.min_rtol * 0.99)).first_divergence


def test_builtin_graphs_cover_the_40_keys_and_lay_out_left_to_right():
    for name in ("minibragg", "nanobragg"):
        g = load_target(name).graph
        assert len(g.keys) == 40 and g.parents["I_pixel_final"][0] == "I_before_scaling"
    g = load_target("minibragg").graph
    values = {k: 1.0 for k in g.keys}
    report = classify(compare_traces(_trace("R:", values), _trace("C:", values)), g)
    lay = key_graph_layout(report)
    assert all(lay.column[p] < lay.column[c] for p, c in lay.edges)
    assert lay.keys == g.keys


def _profile(tmp_path: Path, graph: str) -> Path:
    text = (REPO / "bundle" / "capture" / "profiles" / "minibragg.toml").read_text()
    head = text.split("\n[graph]")[0]
    p = tmp_path / "custom.toml"
    p.write_text(head + "\n" + graph)
    return p


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cyclic_or_unknown_key_graph_is_one_line_exit_2(tmp_path):
    cyclic = _profile(tmp_path, '[graph]\nkeys = ["a", "b"]\n[graph.parents]\na = ["b"]\nb = ["a"]\n')
    proc = _cli("capture", str(REPO / "manifests" / "minibragg-roi.toml"), "--target", str(cyclic),
                "--repo", str(REPO), "--native", "--dry-run")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cycle" in lines[0] and "minibragg" in lines[0] and "key a" in lines[0]
    assert "Traceback" not in proc.stderr
    (tmp_path / "u").mkdir()
    unknown = _profile(tmp_path / "u", '[graph]\nkeys = ["a"]\n[graph.parents]\na = ["zz"]\n')
    proc = _cli("compare", "/dev/null", "/dev/null", "--target", str(unknown))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "key zz" in lines[0] and "Traceback" not in proc.stderr


def test_spec_sets_amplification_and_refuses_a_bad_one():
    import pytest

    from bundle.capture.spec import parse_spec
    from bundle.model.errors import SpecError

    base = {"name": "s", "target": "minibragg", "args": ["-N", "1"]}
    spec = parse_spec({**base, "tolerance": {"rtol": 1e-6, "amplification": 50}})
    assert spec.amplification == 50.0 and spec.tolerance.rtol == 1e-6
    assert spec.to_data()["tolerance"]["amplification"] == 50.0
    assert "amplification" not in parse_spec(base).to_data()["tolerance"]
    with pytest.raises(SpecError, match="tolerance.amplification"):
        parse_spec({**base, "tolerance": {"amplification": 0}})
    graph = KeyGraph(keys=("a", "b"), parents={"b": ("a",)})
    # b diverges ~100x as much as its parent a: amplified with the spec's A = 50, not with 1e6
    cmp = compare_traces(_trace("R:", {"a": 1.0, "b": 1.0}), _trace("C:", {"a": 1 + 1e-5, "b": 1.001}))
    assert {k.key: k.klass for k in classify(cmp, graph, spec.amplification).keys}["b"] == "amplified"
    assert {k.key: k.klass for k in classify(cmp, graph, 1e6).keys}["b"] == "carried"
