"""End to end: a capture of the nanobragg fixture checkout with four injected faults shows its
four independent causes everywhere the issue names: --json, report.md, the key-graph plot,
comparison.parquet, graph.parquet, `show` and `attach`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from test_nanobragg_target import _capture, _checkout, _replace
from test_roots_faults import FLUENCE, PIX0, POLAR, REAL_A

REPO = Path(__file__).resolve().parent.parent
CAUSES = {"pix0_vector_meters", "rot_a_angstroms", "fluence_photons_per_m2", "polar"}


def _faulty(pkg: Path) -> None:
    for name, old, new in (PIX0, REAL_A, FLUENCE, POLAR):
        _replace(pkg / name, old, new)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_four_faults_everywhere(tmp_path):
    repo = _checkout(tmp_path, _faulty)
    code, out, err = _capture(repo, tmp_path / "b")
    assert code == 1, err
    assert {r["key"] for r in out["roots"]} | {a["key"] for a in out["amplified"]} == CAUSES
    assert out["first_divergence"]["key"] == "pix0_vector_meters"  # still named
    assert set(out["carried"]["I_pixel_final"]) == CAUSES
    assert out["chain"]["attribution"]["residual"] is not None
    assert set(out["min_rtol"]) >= CAUSES and out["min_rtol"]["fdet_vec"] == 0.0
    bundle = Path(out["bundle"])

    report = (bundle / "report.md").read_text()
    assert report.index("## Independent divergences") < report.index("## First divergence")
    section = report.split("## Independent divergences")[1].split("\n## ")[0]
    for key in CAUSES:
        assert f"`{key}`" in section
    assert "its inputs rot_a_star_A_inv, rot_b_star_A_inv, rot_c_star_A_inv agree to" in section
    assert "![key_graph](plots/key_graph.png)" in report

    with Image.open(bundle / "plots" / "key_graph.png") as im:
        assert im.size[0] == 1000 and im.size[1] >= 40 * 22
        colours = {c for _n, c in im.convert("RGB").getcolors(1 << 20)}
    assert (214, 39, 40) in colours and (245, 133, 24) in colours  # root red, carried orange

    cmp = pq.read_table(bundle / "comparison.parquet").to_pylist()
    cls = {r["key"]: r["class"] for r in cmp}
    assert {k for k, c in cls.items() if c in ("root", "amplified")} == CAUSES
    assert all(r["min_rtol"] is not None for r in cmp)
    graph = pq.read_table(bundle / "graph.parquet").to_pylist()
    assert sum(1 for g in graph if g["kind"] == "depends") == 54
    assert {"parent": "rot_a_angstroms", "child": "hkl_frac", "kind": "explains",
            "parent_class": "root", "child_class": "carried"} in graph

    shown = _cli("show", str(bundle))
    assert shown.returncode == 0 and "Independent divergences" in shown.stdout
    assert "rot_a_angstroms" in shown.stdout
    ledger = tmp_path / "fix_plan.md"
    ledger.write_text("# Fix plan\n\n## [CLI-FLAGS-003] parity\n- Status: open\n- Attempts History:\n")
    attached = _cli("attach", str(bundle), "--fix-plan", str(ledger), "--item", "CLI-FLAGS-003",
                    "--owner", "me")
    assert attached.returncode == 0, attached.stderr
    text = ledger.read_text()
    for key in CAUSES:
        assert any(line.strip().startswith(f"- root {key}") or line.strip().startswith(f"- amplified {key}")
                   for line in text.splitlines()), key
    assert "first divergence pix0_vector_meters" in text


def test_offline_compare_defaults_to_nanobragg_graph_and_says_so(tmp_path):
    repo = _checkout(tmp_path, lambda pkg: _replace(pkg / FLUENCE[0], FLUENCE[1], FLUENCE[2]))
    code, out, err = _capture(repo, tmp_path / "b")
    logs = Path(out["bundle"]) / "logs"
    c_log, py_log = logs / "run-c.stdout", logs / "run-py.stdout"
    proc = _cli("compare", str(c_log), str(py_log), "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert [r["key"] for r in data["roots"]] == ["fluence_photons_per_m2"]
    assert any("builtin:nanobragg" in n and "nanoBragg's" in n for n in data["notes"])
    profile = tmp_path / "nograph.toml"
    profile.write_text((REPO / "bundle/capture/profiles/minibragg.toml").read_text().split("\n[graph]")[0]
                       .rsplit("\n# What each", 1)[0] + "\n")
    proc = _cli("compare", str(c_log), str(py_log), "--json", "--target", str(profile))
    data = json.loads(proc.stdout)
    assert data["key_graph"]["given"] is False
    assert {r["key"] for r in data["roots"]} == {"fluence_photons_per_m2", "I_pixel_final",
                                                 "floatimage_accumulated"}
    out_dir = tmp_path / "cmp"
    proc = _cli("compare", str(c_log), str(py_log), "--out", str(out_dir))
    assert proc.returncode == 1 and "Independent divergences" in proc.stdout
    assert pq.read_table(out_dir / "graph.parquet").num_rows == 54 + 2
