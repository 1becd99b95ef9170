"""Containers are confined: no capabilities, no privilege gain, a read-only root with a tmpfs /tmp
(writable and executable: the capture's scratch lives there), never uid 0. A root caller's
container runs as the image's unprivileged user and the files it writes are handed back to the
caller. A signal to an ``--in-container`` capture stops and removes its container and leaves no
bundle behind. The in-container dry run and --keep-scratch are checked without an engine.

Tests that need an engine skip only when none answers (the skip says so)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bundle.capture.request import make_request
from bundle.container.handoff import Handoff
from bundle.container.inner import inner_capture
from bundle.container.seam import Mount
from bundle.model.errors import ContainerError
from capture_hostile import (PROFILE, REPO_ROOT, SLOW_PROFILE, bundles_in, cli_argv, cli_env, leftovers,
                             make_repo, run_cli)

SPEC = REPO_ROOT / "manifests" / "minibragg-roi.toml"


def test_in_container_dry_run_runs_nothing_and_carries_keep_scratch(tmp_path):
    proc = run_cli("capture", str(SPEC), "--in-container", "--dry-run", "--keep-scratch",
                   "--bundles", str(tmp_path / "b"), cwd=REPO_ROOT,
                   DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert proc.returncode == 0, proc.stderr
    inner = next(line for line in proc.stdout.splitlines() if line.startswith("nb-evidence "))
    assert "--native" in inner and "--keep-scratch" in inner and "--dry-run" not in inner
    assert not (tmp_path / "b").exists()


def test_keep_scratch_reaches_the_inner_capture_and_only_when_asked(tmp_path):
    for keep in (True, False):
        argv, _ = inner_capture(make_request(SPEC, repo=REPO_ROOT, bundles=tmp_path,
                                             in_container=True, keep_scratch=keep))
        assert ("--keep-scratch" in argv) is keep


def test_handoff_gives_a_root_callers_files_back_and_replaces_nothing(tmp_path):
    bundles = tmp_path / "b"
    (bundles / "old").mkdir(parents=True)
    (bundles / "old" / "f").write_text("the user's\n")
    handoff = Handoff([Mount(bundles, "/bundles", read_only=False)])
    [handed] = [m.source for m in handoff.mounts]
    assert handed.parent.parent == bundles and oct(handed.stat().st_mode & 0o777) == "0o777"
    assert oct(handed.parent.stat().st_mode & 0o777) == "0o700"  # others on the host kept out
    (handed / "new").mkdir()
    (handed / "new" / "manifest.json").write_text("{}")
    (handed / "old").mkdir()
    (handed / "old" / "f").write_text("the container's\n")
    handoff.give_back(os.getuid(), os.getgid())
    assert (bundles / "new" / "manifest.json").read_text() == "{}"
    assert (bundles / "old" / "f").read_text() == "the user's\n"
    assert sorted(p.name for p in bundles.iterdir()) == ["new", "old"]


def test_an_unreadable_read_only_mount_is_refused_in_one_line(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(ContainerError, match="not readable by the container's unprivileged user"):
        Handoff([Mount(closed, "/x")])


# ------------------------------------------------------------------------------- with an engine


@pytest.fixture(scope="module")
def engine(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def image(engine):
    from bundle.container import docker_seam as container

    return container.ensure_image(engine, REPO_ROOT, base_image=container.default_base(engine))


PROBE = """\
echo "uid=$(id -u)"
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status
touch /root-fs-is-writable 2>/dev/null && echo root=rw || echo root=ro
printf '#!/bin/sh\\necho ran-from-tmp\\n' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh
echo written > /out/file
"""


@pytest.mark.xdist_group("container")
def test_a_container_is_confined_and_never_uid_0(engine, image, tmp_path):
    from bundle.container import docker_seam as container

    out = tmp_path / "out"
    out.mkdir()
    got = container.run(engine, image, ["-c", PROBE], mounts=[Mount(out, "/out", read_only=False)],
                        entrypoint=["sh"])
    assert got.exit_code == 0, got.stderr
    lines = got.stdout.split()
    assert "uid=0" not in lines
    assert "CapEff:" in lines and lines[lines.index("CapEff:") + 1] == "0000000000000000"
    assert lines[lines.index("NoNewPrivs:") + 1] == "1"
    assert "root=ro" in lines and "ran-from-tmp" in lines
    written = out / "file"
    assert written.read_text() == "written\n"
    assert (written.stat().st_uid, written.stat().st_gid) == (os.getuid(), os.getgid())
    if os.getuid() == 0:  # root's container ran as the image's user, and gave the files back
        assert f"uid={os.getuid()}" not in lines
    assert [p.name for p in out.iterdir()] == ["file"]  # no handoff directory left


@pytest.mark.xdist_group("container")
@pytest.mark.parametrize("user", ["0", "0:0", "root"])
def test_asking_for_uid_0_is_refused(engine, image, user):
    from bundle.container import docker_seam as container

    with pytest.raises(ContainerError, match="never runs as uid 0"):
        container.run(engine, image, ["-c", "id"], entrypoint=["sh"], user=user)


SLOW = SLOW_PROFILE.format(code="import time; print('TRACE_PY: steps 10', flush=True); "
                                "time.sleep(300)")


def _ours(engine, root: Path, all_states: bool = False) -> list:
    """Containers whose mounts come from this test's directory (other captures may be running)."""
    found = []
    for c in engine.client.containers.list(all=all_states, filters={"label": "nb-evidence.role=run"}):
        if any(str(m.get("Source", "")).startswith(str(root)) for m in c.attrs.get("Mounts", [])):
            found.append(c)
    return found


@pytest.mark.xdist_group("container")
def test_sigterm_to_an_in_container_capture_removes_its_container(engine, image, tmp_path):
    repo = make_repo(tmp_path)
    (repo / "slow.toml").write_text(SLOW)
    bundles = tmp_path / "b"
    proc = subprocess.Popen(cli_argv("capture", "spec.toml", "--target", str(repo / "slow.toml"),
                                     "--repo", ".", "--bundles", str(bundles), "--in-container",
                                     "--quiet"),
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    deadline = time.time() + 300
    while time.time() < deadline and not list(bundles.glob("**/logs/run-py.stdout")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert _ours(engine, tmp_path), "the capture's container should be running"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.splitlines()[-1] == "interrupted", err
    assert _ours(engine, tmp_path, all_states=True) == []
    assert bundles_in(bundles) == [] and leftovers(bundles) == []
    assert [p.name for p in bundles.iterdir() if p.name.startswith(".nb-handoff")] == []


@pytest.mark.xdist_group("container")
def test_an_in_container_bundle_belongs_to_the_caller(engine, image, tmp_path):
    repo = make_repo(tmp_path)
    (repo / "tiny.toml").write_bytes(PROFILE.read_bytes())  # inside the repo: mounted with it
    proc = run_cli("capture", "spec.toml", "--target", "tiny.toml", "--repo", ".", "--bundles",
                   str(tmp_path / "b"), "--in-container", "--json", cwd=repo, timeout=600)
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    if not bundle.is_absolute():
        bundle = repo / bundle
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [bundle, *bundle.rglob("*")]}
    assert owners == {(os.getuid(), os.getgid())}
    assert bundles_in(tmp_path / "b") == [bundle]
    assert [p.name for p in (tmp_path / "b").iterdir() if p.name.startswith(".nb-")] == []
