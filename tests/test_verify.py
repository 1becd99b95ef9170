"""verify_bundle, the manifest schema, and `nb-evidence verify`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bundle.model.errors import BundleError
from bundle.store.schema import load_manifest, manifest_schema, validate_manifest
from bundle.store.verify import file_sha256, verify_bundle
from bundle_factory import make_bundle
from cli.verify import verify as verify_cmd


def listed(bundle: Path) -> list[str]:
    return [f["path"] for f in json.loads((bundle / "manifest.json").read_text())["files"]]


def rewrite_manifest(bundle: Path, edit) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    edit(data)
    (bundle / "manifest.json").write_text(json.dumps(data, indent=2))


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


# --------------------------------------------------------------------------- intact


@pytest.mark.parametrize("kwargs", [{}, {"verdict": "parity"}, {"verdict": "incomplete"},
                                    {"py_inconsistent": True, "images": False}])
def test_fresh_bundle_is_intact(tmp_path: Path, kwargs) -> None:
    b = make_bundle(tmp_path, **kwargs)
    r = verify_bundle(b)
    assert r.intact, r
    assert (r.missing, r.changed, r.extra, r.schema_problems) == ((), (), (), ())
    assert r.files_checked == len(listed(b))
    assert r.bundle == b


def test_manifest_path_is_accepted_too(bundle: Path) -> None:
    assert verify_bundle(bundle / "manifest.json").intact


def test_factory_lists_every_file_but_the_manifest(bundle: Path) -> None:
    names = listed(bundle)
    assert "manifest.json" not in names
    assert {"report.md", "logs/run-c.stdout", "logs/run-py.stdout", "images/c.bin"} <= set(names)


# --------------------------------------------------------------------------- tampering, by name


def test_flipped_byte_in_each_file_is_named(tmp_path: Path) -> None:
    names = listed(make_bundle(tmp_path / "probe"))
    assert len(names) >= 8
    for i, rel in enumerate(names):
        b = make_bundle(tmp_path / f"b{i}")
        p = b / rel
        data = bytearray(p.read_bytes())
        if data:
            data[len(data) // 2] ^= 0x01  # same size, different content
        else:
            data = bytearray(b"\0")  # an empty file can only grow
        p.write_bytes(bytes(data))
        r = verify_bundle(b)
        assert not r.intact
        assert r.changed == (rel,), rel
        assert r.missing == () and r.extra == () and r.schema_problems == ()


def test_deleted_file_is_named(tmp_path: Path) -> None:
    for i, rel in enumerate(["report.md", "logs/run-py.stdout", "images/py.bin"]):
        b = make_bundle(tmp_path / f"b{i}")
        (b / rel).unlink()
        r = verify_bundle(b)
        assert not r.intact
        assert r.missing == (rel,)
        assert r.changed == () and r.extra == ()


def test_deleted_directory_names_each_file(bundle: Path) -> None:
    for p in (bundle / "images").iterdir():
        p.unlink()
    (bundle / "images").rmdir()
    assert verify_bundle(bundle).missing == ("images/c.bin", "images/py.bin")


def test_added_files_are_named_manifest_is_not_extra(bundle: Path) -> None:
    (bundle / "notes.txt").write_text("hi")
    (bundle / "plots").mkdir()
    (bundle / "plots" / "new.png").write_bytes(b"\x89PNG")
    (bundle / "empty-dir").mkdir()  # an empty directory holds no file: not extra
    r = verify_bundle(bundle)
    assert not r.intact
    assert r.extra == ("notes.txt", "plots/new.png")
    assert "manifest.json" not in r.extra
    assert r.missing == () and r.changed == ()


def test_symlink_in_place_of_a_file_is_changed_even_with_same_content(bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "copy.md"
    outside.write_bytes((bundle / "report.md").read_bytes())
    (bundle / "report.md").unlink()
    os.symlink(outside, bundle / "report.md")
    assert verify_bundle(bundle).changed == ("report.md",)


def test_changed_listed_hash_is_detected(bundle: Path) -> None:
    def edit(m):
        m["files"][0]["sha256"] = "0" * 64
    rewrite_manifest(bundle, edit)
    r = verify_bundle(bundle)
    assert r.changed == (listed(bundle)[0],)


# --------------------------------------------------------------------------- bad manifests


def test_bad_manifest_reports_schema_problems(bundle: Path) -> None:
    def edit(m):
        m["format_version"] = 2
        del m["result"]["verdict"]
        m["commands"][0]["exit_code"] = "zero"
    rewrite_manifest(bundle, edit)
    r = verify_bundle(bundle)
    assert not r.intact
    text = "\n".join(r.schema_problems)
    assert "format_version" in text
    assert "verdict" in text
    assert "commands[0].exit_code" in text
    assert r.missing == r.changed == r.extra == ()


def test_unparsable_manifest_is_not_intact(bundle: Path) -> None:
    (bundle / "manifest.json").write_text('{"format": ')
    r = verify_bundle(bundle)
    assert not r.intact
    assert len(r.schema_problems) == 1 and "not valid JSON" in r.schema_problems[0]


def test_path_escaping_the_bundle_is_a_problem_and_not_read(bundle: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    data = secret.read_bytes()

    def edit(m):
        m["files"].append({"path": "../secret.txt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    rewrite_manifest(bundle, edit)
    r = verify_bundle(bundle)
    assert not r.intact
    assert any("../secret.txt" in p for p in r.schema_problems)
    assert "../secret.txt" not in r.missing + r.changed


def test_not_a_bundle_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a bundle directory"):
        verify_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="manifest.json"):
        verify_bundle(tmp_path)


def test_validate_manifest_valid_and_invalid(bundle: Path) -> None:
    m = load_manifest(bundle)
    assert validate_manifest(m) == []
    assert manifest_schema()["$schema"].endswith("2020-12/schema")

    bad = json.loads(json.dumps(m))
    bad["files"][0]["sha256"] = "ABC"
    bad["files"].append(dict(bad["files"][1]))
    bad["files"].append({"path": "manifest.json", "size": 1, "sha256": "0" * 64})
    bad["files"].append({"path": "/etc/passwd", "size": 1, "sha256": "0" * 64})
    bad["bundle_id"] = "a/b"
    bad["status"] = "done"
    problems = validate_manifest(bad)
    joined = "\n".join(problems)
    assert "files[0].sha256" in joined
    assert "listed more than once" in joined
    assert "must not list itself" in joined
    assert "/etc/passwd" in joined
    assert "bundle_id" in joined
    assert "status" in joined
    assert all("\n" not in p for p in problems)

    assert validate_manifest([]) != []
    missing_top = {k: v for k, v in m.items() if k != "files"}
    assert any("'files' is a required property" in p for p in validate_manifest(missing_top))


def test_schema_leaves_room_to_grow(bundle: Path) -> None:
    m = load_manifest(bundle)
    m["spec"]["new_field"] = [1, 2]
    m["environment"]["gpu"] = "none"
    m["target"]["flavour"] = "x"
    m["engines"][0]["binary"] = {"path": "/x"}
    m["result"]["chain"]["final_ratio"] = "inf"  # non-finite floats travel as strings
    assert validate_manifest(m) == []


def test_schema_refuses_unknown_top_level_and_result_fields(bundle: Path) -> None:
    # A field nobody checks is a field a forger can fill (issue 11): top level and result are closed.
    for place in ("top", "result"):
        m = load_manifest(bundle)
        (m if place == "top" else m["result"])["verdict_override"] = "parity"
        problems = validate_manifest(m)
        assert any("verdict_override" in p for p in problems), problems


def test_load_manifest_errors_are_one_line(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError) as e:
        load_manifest(tmp_path / "missing")
    assert "\n" not in str(e.value)
    rewrite_manifest(bundle, lambda m: m.pop("result"))
    with pytest.raises(BundleError) as e:
        load_manifest(bundle)
    assert "manifest.json" in str(e.value) and "result" in str(e.value) and "\n" not in str(e.value)
    (bundle / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a JSON object"):
        load_manifest(bundle / "manifest.json")


def test_file_sha256_streams_across_chunks(tmp_path: Path) -> None:
    p = tmp_path / "big.bin"
    data = os.urandom((3 << 20) + 5)
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # forces subcommand names
        pass

    app.command("verify")(verify_cmd)
    return app


def test_cli_exit_codes_and_json(bundle: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(_app(), ["verify", str(bundle)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output

    js = runner.invoke(_app(), ["verify", str(bundle), "--json"])
    assert js.exit_code == 0
    data = json.loads(js.stdout)
    assert data["intact"] is True and data["missing"] == []

    (bundle / "report.md").write_text("edited")
    (bundle / "stray.txt").write_text("x")
    bad = runner.invoke(_app(), ["verify", str(bundle)])
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output and "report.md" in bad.output and "stray.txt" in bad.output
    js = runner.invoke(_app(), ["verify", str(bundle), "--json"])
    assert js.exit_code == 1
    data = json.loads(js.stdout)
    assert data["changed"] == ["report.md"] and data["extra"] == ["stray.txt"]


def test_cli_error_propagates_for_the_app_handler(tmp_path: Path) -> None:
    r = CliRunner().invoke(_app(), ["verify", str(tmp_path / "nope")])
    assert isinstance(r.exception, BundleError)


# --------------------------------------------------------------------------- a real capture


def test_a_real_capture_verifies_attaches_and_exports(tmp_path: Path) -> None:
    """One real capture (the tiny test engines, py printing a fluence it did not use) through
    verify, attach --dry-run and export: the schema and the readers agree with the writer."""
    from datetime import date

    from bundle.ledger.export import export
    from bundle.ledger.fixplan import attach
    from test_capture import bundles_in, make_repo, run_cli

    repo = make_repo(tmp_path, bug="lie")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(repo / "bundles"), "--json", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    [b] = bundles_in(repo / "bundles")
    r = verify_bundle(b)
    assert r.intact, r
    assert validate_manifest(load_manifest(b)) == []

    fix_plan = repo / "docs" / "fix_plan.md"
    fix_plan.parent.mkdir()
    fix_plan.write_text("## [TINY-001] Tiny\n- Status: open\n")
    a = attach(b, fix_plan, "TINY-001", "me", dry_run=True, today=date(2026, 11, 27))
    assert "**PARITY FAILURE** (first divergence at fluence_photons_per_m2)" in a.entry
    assert "py trace is NOT self-consistent" in a.entry
    assert f"`bundles/{b.name}/manifest.json`" in a.entry

    written = export(b, repo / "reports" / "2026-11-tiny" / "phase_a")
    assert (written[0].name, written[1].name) == ("trace_c_scaling.log", "trace_py_scaling.log")
    assert "**NO**" in (written[0].parent / "scaling_chain.md").read_text()
