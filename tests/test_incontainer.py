"""The whole capture inside the pinned image, against a real Docker engine.

Skips only when no Docker engine answers (the reason says so). The image is this checkout's
content tag, built by `make image` (CI) or here on local/debian:bookworm when missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bundle.container import docker_seam as container
from bundle.model.errors import ContainerError

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "manifests" / "minibragg-roi.toml"
pytestmark = pytest.mark.xdist_group("container")


@pytest.fixture(scope="module")
def engine(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def image(engine):
    return container.ensure_image(engine, REPO, base_image=container.default_base(engine))


def _capture(*extra: str, bundles: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--bundles",
                           str(bundles), "--json", *extra], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def both(image, tmp_path_factory):
    root = tmp_path_factory.mktemp("incontainer")
    native = _capture("--native", bundles=root / "native")
    inside = _capture("--in-container", bundles=root / "inside")
    assert native.returncode == 0, native.stderr
    assert inside.returncode == 0, inside.stderr
    return json.loads(native.stdout), json.loads(inside.stdout)


def test_in_container_tables_equal_native(both):
    native, inside = both
    assert native["verdict"] == inside["verdict"] == "parity"
    a = pq.read_table(Path(native["bundle"]) / "comparison.parquet").to_pydict()
    b = pq.read_table(Path(inside["bundle"]) / "comparison.parquet").to_pydict()
    assert a["key"] == b["key"] and a["component"] == b["component"]
    assert a["ref"] == b["ref"]  # the C values, bitwise
    assert a["status"] == b["status"]
    ta = pq.read_table(Path(native["bundle"]) / "traces.parquet").to_pydict()
    tb = pq.read_table(Path(inside["bundle"]) / "traces.parquet").to_pydict()
    assert ta["token"] == tb["token"]  # every printed number, both engines, character for character


def test_manifest_records_the_image(both, image):
    _native, inside = both
    manifest = json.loads((Path(inside["bundle"]) / "manifest.json").read_text())
    recorded = manifest["environment"]["container"]
    inspected = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image.tag],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert recorded["image_id"] == inspected == image.id
    assert recorded["dockerfile_sha256"] == image.dockerfile_sha256
    assert recorded["lock_sha256"] == image.lock_sha256
    assert manifest["target"]["repo"] == "/repo" and manifest["target"]["host_repo"] == str(REPO)
    verify = subprocess.run([sys.executable, "-m", "cli", "verify", inside["bundle"]], cwd=REPO,
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bundle_files_belong_to_the_invoking_user(both):
    _native, inside = both
    for path in Path(inside["bundle"]).rglob("*"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), path


def test_repo_is_untouched_by_an_in_container_capture(both):
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--ignored",
                             "minibragg"], capture_output=True, text=True).stdout
    assert "Fdump.bin" not in status and "img.bin" not in status


def test_failed_build_leaves_a_partial_bundle(engine, image, tmp_path):
    from bundle.capture.request import make_request
    from bundle.container.incontainer import capture_in_container

    project = tmp_path / "project"
    (project / "wheels").mkdir(parents=True)
    (project / "wheels" / "requirements.lock").write_text("# empty\n")
    (project / "Dockerfile").write_text(f"FROM {image.id}\nUSER root\nRUN echo compiler-missing && exit 9\n")
    request = make_request(Path(SPEC), repo=REPO, bundles=tmp_path / "b", in_container=True)
    with pytest.raises(ContainerError, match="partial bundle at"):
        capture_in_container(request, project=project)
    [bundle] = [p for p in (tmp_path / "b").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["result"]["verdict"] == "incomplete"
    assert manifest["commands"][0]["step"] == "image-build"
    assert "compiler-missing" in (bundle / "logs" / "image-build.stdout").read_text()
    assert "compiler-missing" in (bundle / "report.md").read_text()


def test_no_engine_is_one_line_suggesting_native(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    proc = _capture("--in-container", bundles=tmp_path / "b", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Docker engine answers" in lines[0] and "--native" in lines[0]


def test_containerized_bundle_replays_in_its_recorded_image(both, tmp_path):
    _native, inside = both
    proc = subprocess.run([sys.executable, "-m", "cli", "replay", inside["bundle"], "--bundles",
                           str(tmp_path / "r"), "--json"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reproduced"] is True
    assert out["image"]["id_matches"] is True and out["image"]["rebuilt"] is False
    assert {o["verdict"] for o in out["outputs"]} == {"identical"}
    manifest = json.loads((Path(out["bundle"]) / "manifest.json").read_text())
    assert manifest["replay_of"] == Path(inside["bundle"]).name
    assert manifest["environment"]["container"]["image_id"] == out["image"]["used"]
