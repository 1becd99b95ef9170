"""Verify checks what the manifest claims, not only its bytes (issue 11): real captures of the
tiny engines, their manifest, tables and report forged, `nb-evidence verify` run for real."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_capture import make_repo
from trust_replay_helpers import bundles_in, forge, nb, one_error_line, relist


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    repo = make_repo(root)
    proc = nb("capture", "spec.toml", "--repo", ".", "--bundles", str(root / "b"), "-q", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(root / "b")
    return bundle


def _verify(bundle: Path) -> tuple[int, dict]:
    proc = nb("verify", str(bundle), "--json", cwd=bundle.parent)
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_fresh_capture_agrees_with_its_logs(tiny):
    code, out = _verify(tiny)
    assert code == 0 and out["intact"] is True and out["claims"] == []


@pytest.mark.parametrize("field, forged", [
    ("verdict", "divergence"),
    ("keys_compared", 3),
    ("first_divergence", {"key": "polar", "occurrence": 0, "component": 0, "status": "differ",
                          "c": 0.75, "py": 0.5, "abs_diff": 0.25, "rel_diff": 1 / 3,
                          "ratio": 2 / 3, "rtol": 1e-6, "atol": 0.0}),
])
def test_forged_result_field_is_tampered_naming_it(tiny, tmp_path, field, forged):
    bundle = forge(tiny, tmp_path, lambda m: m["result"].__setitem__(field, forged))
    code, out = _verify(bundle)
    assert code == 1 and out["intact"] is False
    assert any(c.startswith(f"result.{field}:") for c in out["claims"]), out["claims"]
    # The text form says TAMPERED and names the field too.
    proc = nb("verify", str(bundle), cwd=tmp_path)
    assert proc.returncode == 1 and "TAMPERED" in proc.stdout and f"result.{field}" in proc.stdout


def test_forged_verdict_cannot_reach_the_ledger(tiny, tmp_path):
    bundle = forge(tiny, tmp_path, lambda m: m["result"].__setitem__("verdict", "divergence"))
    ledger = tmp_path / "fix_plan.md"
    text = "# Fix plan\n\n## [TINY-001] Tiny\n- Status: open\n- Attempts History:\n"
    ledger.write_text(text)
    proc = nb("attach", str(bundle), "--fix-plan", str(ledger), "--item", "TINY-001", cwd=tmp_path)
    assert proc.returncode == 2
    assert "result.verdict" in one_error_line(proc.stderr)
    assert ledger.read_text() == text


def test_forged_comparison_table_is_tampered(tiny, tmp_path):
    bundle = forge(tiny, tmp_path, lambda m: None)
    table = pq.read_table(bundle / "comparison.parquet")
    cand = table.column("cand").to_pylist()
    cand[0] = (cand[0] or 0.0) * 2 + 1
    table = table.set_column(table.schema.get_field_index("cand"), "cand", pa.array(cand, pa.float64()))
    pq.write_table(table, bundle / "comparison.parquet")
    relist(bundle, "comparison.parquet")
    code, out = _verify(bundle)
    assert code == 1 and out["changed"] == []  # the bytes match the (forged) list
    assert any(c.startswith("comparison.parquet:") for c in out["claims"]), out["claims"]


def test_forged_chain_table_is_tampered(tiny, tmp_path):
    bundle = forge(tiny, tmp_path, lambda m: None)
    table = pq.read_table(bundle / "chain.parquet")
    assert table.num_rows > 0
    consistent = [(not v) if v is not None else None for v in table.column("consistent").to_pylist()]
    table = table.set_column(table.schema.get_field_index("consistent"), "consistent",
                             pa.array(consistent, pa.bool_()))
    pq.write_table(table, bundle / "chain.parquet")
    relist(bundle, "chain.parquet")
    code, out = _verify(bundle)
    assert code == 1 and any(c.startswith("chain.parquet:") for c in out["claims"]), out["claims"]


def test_forged_report_verdict_is_tampered(tiny, tmp_path):
    bundle = forge(tiny, tmp_path, lambda m: None)
    report = (bundle / "report.md").read_text()
    assert "**Verdict: PARITY**" in report
    (bundle / "report.md").write_text(report.replace("**Verdict: PARITY**", "**Verdict: DIVERGENCE**", 1))
    relist(bundle, "report.md")
    code, out = _verify(bundle)
    assert code == 1 and any(c.startswith("report.md:") for c in out["claims"]), out["claims"]


def test_unknown_manifest_field_is_refused_by_the_schema(tiny, tmp_path):
    bundle = forge(tiny, tmp_path, lambda m: m.__setitem__("verdict", "parity"))
    code, out = _verify(bundle)
    assert code == 1 and any("verdict" in p for p in out["schema_problems"]), out


def test_a_side_is_never_compared_with_itself(tiny, tmp_path):
    def edit(m: dict) -> None:
        c, py = m["engines"][0], m["engines"][1]
        py["log"], py["prefix"] = c["log"], c["prefix"]
    bundle = forge(tiny, tmp_path, edit)
    code, out = _verify(bundle)
    assert code == 1
    assert any("read the same trace" in c for c in out["claims"]), out["claims"]


def test_a_log_holding_both_prefixes_compares_each_side_by_its_own(tiny, tmp_path):
    # The c log also carries every TRACE_PY line: c is still read by its own prefix, so the
    # recomputation is c against py, and the bundle (its list updated) agrees with its logs.
    bundle = forge(tiny, tmp_path, lambda m: None)
    manifest = json.loads((bundle / "manifest.json").read_text())
    logs = {e["name"]: e["log"] for e in manifest["engines"]}
    c_log = bundle / logs["c"]
    py_lines = [l for l in (bundle / logs["py"]).read_text().splitlines(keepends=True)
                if l.startswith("TRACE_PY:")]
    assert py_lines
    c_log.write_text(c_log.read_text() + "".join(py_lines))
    relist(bundle, logs["c"])
    code, out = _verify(bundle)
    assert code == 0 and out["claims"] == [], out
    # ...and a py side that differs is still found through that log.
    py_log = bundle / logs["py"]
    py_log.write_text(py_log.read_text().replace("TRACE_PY: polar 0.75", "TRACE_PY: polar 0.5"))
    relist(bundle, logs["py"])
    code, out = _verify(bundle)
    assert code == 1 and any(c.startswith("result.verdict:") for c in out["claims"]), out


def test_show_never_prints_a_forged_verdict(tiny, tmp_path):
    proc = nb("show", str(tiny), cwd=tmp_path)
    assert proc.returncode == 0 and "PARITY" in proc.stdout.upper()
    bundle = forge(tiny, tmp_path, lambda m: m["result"].__setitem__("verdict", "divergence"))
    proc = nb("show", str(bundle), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "result.verdict" in one_error_line(proc.stderr)
