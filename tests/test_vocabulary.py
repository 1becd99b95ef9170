"""One presentation vocabulary and one set of pass thresholds: the writers of report.md, the
terminal summary, the ledger entry and the export word results only through
bundle/present/vocabulary.py, and the thresholds exist once, in bundle/model/thresholds.py."""

from __future__ import annotations

import ast
import io
import math
from pathlib import Path

import pytest
from capture_fixtures import divergent_result
from rich.console import Console

from bundle.model import thresholds as metrics
from bundle.present import vocabulary as v
from bundle.present.report import report_markdown

REPO = Path(__file__).resolve().parent.parent
WRITERS = ["bundle/present/report.py", "cli/render.py", "bundle/ledger/export.py",
           "bundle/ledger/fixplan.py"]
VOCABULARY = "bundle/present/vocabulary.py"


def _code_constants(path: Path):
    """Every constant in the code of ``path`` (docstrings are prose, not output: left out)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            yield node.value


def _sources():
    for top in ("bundle", "cli"):
        for path in sorted((REPO / top).rglob("*.py")):
            yield str(path.relative_to(REPO)), path


def test_the_correlation_threshold_is_a_literal_only_in_thresholds():
    found = [rel for rel, path in _sources()
             if any(type(c) is float and c == metrics.CORRELATION_PASS for c in _code_constants(path))]
    assert found == ["bundle/model/thresholds.py"]


@pytest.mark.parametrize("text", ["0.999", "≥ 0", "≤ 1", "1e-6", "1e-06"])
def test_writers_spell_no_threshold(text):
    found = [rel for rel in WRITERS + [VOCABULARY]
             for c in _code_constants(REPO / rel) if isinstance(c, str) and text in c]
    assert found == [], found


@pytest.mark.parametrize("word", [v.OK, v.BAD, v.PARITY_FAILURE, v.PRINTS_UNUSED,
                                  v.NOT_SELF_CONSISTENT, v.NOT_CHECKABLE, v.FIRST_DIVERGENCE_AT,
                                  v.WITHIN_TOLERANCE, "I_pixel_final"])
def test_words_are_written_only_in_the_vocabulary(word):
    found = sorted({rel for rel in WRITERS for c in _code_constants(REPO / rel)
                    if isinstance(c, str) and word in c})
    assert found == []
    assert any(isinstance(c, str) and word in c for c in _code_constants(REPO / VOCABULARY)) \
        or word == "I_pixel_final"


def test_every_writer_uses_the_vocabulary():
    for rel in WRITERS:
        tree = ast.parse((REPO / rel).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            for a in n.names}
        assert "bundle.present.vocabulary" in imported, rel


def test_pass_lines_come_from_the_thresholds(monkeypatch):
    assert v.CORRELATION_PASS_LINE == f"≥ {metrics.CORRELATION_PASS}" == "≥ 0.999"
    assert v.PEAK_DISTANCE_PASS_LINE == f"≤ {metrics.PEAK_DISTANCE_PASS:g} px" == "≤ 1 px"
    md = report_markdown(divergent_result(), {})
    assert f"| {v.CORRELATION_PASS_LINE} |" in md and f"| {v.PEAK_DISTANCE_PASS_LINE} |" in md
    # A moved threshold moves the pass line the writers show.
    monkeypatch.setattr(v, "CORRELATION_PASS_LINE", "≥ 0.5")
    from cli.render import summary_renderables
    console = Console(record=True, width=120, file=io.StringIO())
    for r in summary_renderables({"result": {"verdict": "parity", "metrics": {"pearson": 1.0}}}):
        console.print(r)
    assert "correlation (≥ 0.5)" in console.export_text()


def test_number_formats():
    assert v.fmt_value(3.0) == "3" and v.fmt_value(0.1 + 0.2) == "0.3"
    assert v.fmt_value(None) == v.DASH
    assert v.fmt_short(1 / 3, 3) == "0.333"
    assert v.fmt_json("nan") == "nan" and v.fmt_json(None) == v.DASH
    assert v.fmt_json("n.a.") == "n.a." and v.fmt_json(1e24, 8) == "1e+24"
    assert v.fmt_plain(None) == "n/a" and v.fmt_plain(True) == "true"
    assert v.fmt_plain(123456789) == "123456789" and v.fmt_plain(math.inf) == "inf"
    # a ratio other than 1 never prints as 1; two different values never print alike
    assert v.fmt_ratio(1 + 1e-12) != "1" and float(v.fmt_ratio(1 + 1e-12)) != 1.0
    assert v.fmt_ratio(1.0) == "1"
    a, b = v.fmt_pair(0.30000000000000004, 0.3)
    assert a != b
    assert v.fmt_full(1e24) == "1e+24" and v.fmt_full(7) == "7"


def test_labels_and_sentences():
    assert v.key_label("k") == "k"
    assert v.key_label("k", occurrence=1, component=0) == "k[0]#2"
    assert v.key_label_prose("k", component=2, occurrence=1) == "k[2] (occurrence 2)"
    assert v.ratio_label("c", "py") == "py/c" and v.engine_label("c") == "C"
    assert v.CHAIN_FORMULA == ("I_pixel_final = I_before_scaling / steps · r_e_sqr · "
                               "fluence_photons_per_m2 · capture_fraction · polar · omega_pixel")
    assert v.not_checkable() == "self-consistency not checkable"
    assert v.not_checkable("polar") == "self-consistency not checkable (missing polar)"
    assert v.mark(True) == "✓" and v.mark(False) == "✗" and v.mark(None) == v.DASH
    res = {"verdict": "divergence", "status": "partial",
           "first_divergence": {"key": "F_cell", "component": 1},
           "missing": {"py": ["a"]}, "failed_commands": [{"step": "run-py", "exit_code": 2}]}
    assert v.result_word(res, "c", "py") == (
        "**PARITY FAILURE** (first divergence at F_cell[1]; capture partial: run-py exited 2, "
        "1 key missing on py)")
    assert v.result_word({"verdict": "parity", "keys_compared": 3}, "c", "py") == \
        "**PARITY** (all 3 compared keys within tolerance)"
