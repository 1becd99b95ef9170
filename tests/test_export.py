"""export (reports/ layout) and archive (manifests/archive/), and their CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bundle.store.archive import archive
from bundle.model.errors import BundleError, UserError
from bundle.ledger.export import export, trace_file_name
from bundle_factory import DEFAULT_ID, make_bundle
from cli.ledger import archive as archive_cmd
from cli.ledger import export as export_cmd

EXPORTED = ["trace_c_scaling.log", "trace_py_scaling.log", "scaling_chain.md", "README.md"]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundles")


def prefixed(log: Path, prefix: str) -> list[str]:
    return [l for l in log.read_text().splitlines(keepends=True) if l.startswith(prefix)]


# --------------------------------------------------------------------------- export


def test_export_writes_the_reports_files(bundle: Path, tmp_path: Path) -> None:
    to = tmp_path / "reports" / "2026-11-cli-flags" / "phase_j"
    written = export(bundle, to)
    assert [p.name for p in written] == EXPORTED
    assert sorted(p.name for p in to.iterdir()) == sorted(EXPORTED)

    c = (to / "trace_c_scaling.log").read_text()
    assert c.splitlines(keepends=True) == prefixed(bundle / "logs/run-c.stdout", "TRACE_C:")
    assert "TRACE_CONFIG" not in c and "TRACE: " not in c and "% done" not in c
    py = (to / "trace_py_scaling.log").read_text()
    assert py.splitlines(keepends=True) == prefixed(bundle / "logs/run-py.stdout", "TRACE_PY:")
    assert "TRACE_PY: F_cell 100.03\n" in py

    chain = (to / "scaling_chain.md").read_text()
    assert "| factor | c | py | py/c | agrees |" in chain
    assert "| I_before_scaling | 824505000000 | 824999777205.45 | 1.0006 | no |" in chain
    assert "| steps | 10 | 10 | 1 | yes |" in chain
    assert "## Self-consistency" in chain and "| c |" in chain and "| py |" in chain
    assert "First chain factor to differ: I_before_scaling" in chain

    readme = (to / "README.md").read_text()
    assert DEFAULT_ID in readme
    assert "/manifest.json" in readme and "/report.md" in readme
    assert f"nb-evidence replay bundles/{DEFAULT_ID}" in readme
    assert "nb-evidence verify" in readme
    for name in EXPORTED:
        assert f"`{name}`" in readme


def test_export_names_other_engines_by_name_and_flags_inconsistency(tmp_path: Path) -> None:
    b = make_bundle(
        tmp_path / "b", py_inconsistent=True, images=False,
        engines=[
            {"name": "py-f32", "prefix": "TRACE_C:", "log": "logs/run-c.stdout"},
            {"name": "py-f64", "prefix": "TRACE_PY:", "log": "logs/run-py.stdout"},
            {"name": "gpu", "prefix": "TRACE_GPU:", "log": None},
        ],
    )
    to = tmp_path / "out"
    names = [p.name for p in export(b, to)]
    assert names == ["trace_py-f32_scaling.log", "trace_py-f64_scaling.log", "scaling_chain.md", "README.md"]
    assert "gpu left no run log" in (to / "README.md").read_text()
    chain = (to / "scaling_chain.md").read_text()
    assert "**NO**" in chain and "did not use" in chain
    assert trace_file_name("a/b c") == "trace_a_b_c_scaling.log"


def test_export_partial_bundle(tmp_path: Path) -> None:
    b = make_bundle(tmp_path / "b", verdict="incomplete")
    to = tmp_path / "out"
    export(b, to)
    py = (to / "trace_py_scaling.log").read_text().splitlines()
    c = (to / "trace_c_scaling.log").read_text().splitlines()
    assert len(py) < len(c) and py[-1].startswith("TRACE_PY: F_cell")
    assert "not checkable" in (to / "scaling_chain.md").read_text()
    assert "**PARTIAL**" in (to / "README.md").read_text()


@pytest.mark.parametrize("clash", EXPORTED)
def test_export_refuses_to_overwrite_and_writes_nothing(bundle: Path, tmp_path: Path, clash: str) -> None:
    to = tmp_path / "phase_j"
    to.mkdir()
    (to / clash).write_text("earlier phase's evidence")
    with pytest.raises(UserError) as e:
        export(bundle, to)
    assert clash in str(e.value) and "\n" not in str(e.value)
    assert [p.name for p in to.iterdir()] == [clash]
    assert (to / clash).read_text() == "earlier phase's evidence"


def test_export_twice_refuses_the_second_time(bundle: Path, tmp_path: Path) -> None:
    to = tmp_path / "phase_j"
    export(bundle, to)
    snapshot = {p.name: p.read_bytes() for p in to.iterdir()}
    with pytest.raises(UserError, match="already exists"):
        export(bundle, to)
    assert {p.name: p.read_bytes() for p in to.iterdir()} == snapshot


def test_export_refuses_a_tampered_bundle(bundle: Path, tmp_path: Path) -> None:
    log = bundle / "logs/run-py.stdout"
    log.write_text(log.read_text().replace("100.03", "100.00"))
    with pytest.raises(BundleError, match="not intact"):
        export(bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- archive


def test_archive_copies_manifest_and_is_idempotent(bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    r = archive(bundle, repo)
    assert r.created and r.path == repo / "manifests" / "archive" / f"{DEFAULT_ID}.json"
    assert r.path.read_bytes() == (bundle / "manifest.json").read_bytes()
    again = archive(bundle, repo)
    assert not again.created and again.path == r.path
    assert sorted(p.name for p in r.path.parent.iterdir()) == [f"{DEFAULT_ID}.json"]  # no temp files


def test_archive_refuses_a_different_existing_file(bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    dest = repo / "manifests" / "archive" / f"{DEFAULT_ID}.json"
    dest.parent.mkdir(parents=True)
    dest.write_text("{}")
    with pytest.raises(BundleError, match="differs"):
        archive(bundle, repo)
    assert dest.read_text() == "{}"


def test_archive_refuses_an_invalid_manifest(bundle: Path, tmp_path: Path) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    data["format_version"] = 7
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="format_version"):
        archive(bundle, tmp_path)
    assert not (tmp_path / "manifests").exists()


# --------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    app.command("archive")(archive_cmd)
    app.command("export")(export_cmd)
    return app


def test_cli_archive_and_export(bundle: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    repo = tmp_path / "repo"
    repo.mkdir()
    first = runner.invoke(_app(), ["archive", str(bundle), "--repo", str(repo)])
    assert first.exit_code == 0 and "archived" in first.output
    second = runner.invoke(_app(), ["archive", str(bundle), "--repo", str(repo)])
    assert second.exit_code == 0 and "already archived" in second.output

    to = tmp_path / "reports" / "2026-11-x" / "phase_a"
    out = runner.invoke(_app(), ["export", str(bundle), "--to", str(to)])
    assert out.exit_code == 0, out.output
    assert "4 files" in out.output
    refused = runner.invoke(_app(), ["export", str(bundle), "--to", str(to)])
    assert isinstance(refused.exception, UserError)
