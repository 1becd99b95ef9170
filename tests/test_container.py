"""The container seam (bundle/container.py) against a real Docker engine and the real CPU image.

Tests that need an engine skip only when none answers (the skip reason says so). The image is the
checkout's content tag: `make image` builds it; if it is missing, the fixture builds it on
NB_BASE_IMAGE (default local/debian:bookworm, from `make base-image`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.container import docker_seam as container
from bundle.container.docker_seam import ContainerBuildError, ContainerEvent, ImageInfo, Mount
from bundle.capture.environment import CONTAINER_VARS
from bundle.model.errors import ContainerError

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("NB_BASE_IMAGE", "local/debian:bookworm")

# Every test here on one xdist worker: they share one engine and one (possibly built) image.
pytestmark = pytest.mark.xdist_group("container")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ without an engine


def test_connect_without_engine_raises_one_line_hint(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(ContainerError) as caught:
        container.connect(timeout_s=3)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no Docker engine answers (tcp://127.0.0.1:9: ")
    assert "start one (e.g. `sudo dockerd &`) or use --native" in message


def test_connect_to_missing_socket_raises_container_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(ContainerError, match=r"^no Docker engine answers \(unix://"):
        container.connect(timeout_s=3)


def _context_copy(dst: Path) -> Path:
    """The CPU image's build inputs (the allow-listed context, without wheel files) in dst."""
    for name in (".dockerignore", "Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dst / name)
    (dst / "wheels").mkdir()
    shutil.copy2(REPO / "wheels" / "requirements.lock", dst / "wheels" / "requirements.lock")
    for pkg in ("cli", "bundle", "minibragg"):
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_content_tag_covers_dockerfile_lock_and_source_only(tmp_path):
    ctx = _context_copy(tmp_path)
    content = container.image_content(ctx)
    assert re.fullmatch(r"nb-evidence:[0-9a-f]{12}", content.tag)
    assert content.tag == "nb-evidence:" + content.content_sha256[:12]
    assert content.dockerfile_sha256 == _sha256(ctx / "Dockerfile")
    assert content.lock_sha256 == _sha256(ctx / "wheels" / "requirements.lock")
    assert {"Dockerfile", "wheels/requirements.lock", "pyproject.toml"} <= set(content.files)
    assert container.image_tag(ctx) == content.tag

    # Not part of the tag: wheel files (the lock pins them), bytecode, files outside the context.
    (ctx / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"not hashed")
    (ctx / "bundle" / "__pycache__").mkdir(exist_ok=True)
    (ctx / "bundle" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (ctx / "tests").mkdir()
    (ctx / "tests" / "test_x.py").write_text("pass\n")
    (ctx / "bundles").mkdir()
    (ctx / "bundles" / "run.json").write_text("{}")
    assert container.image_tag(ctx) == content.tag

    # Part of it: the Dockerfile, the lock, the source.
    for rel in ("Dockerfile", "wheels/requirements.lock", "bundle/model/errors.py", "pyproject.toml"):
        path = ctx / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert container.image_tag(ctx) != content.tag, rel
        path.write_bytes(original)
    assert container.image_tag(ctx) == content.tag


def test_content_needs_the_lock(tmp_path):
    ctx = _context_copy(tmp_path)
    (ctx / "wheels" / "requirements.lock").unlink()
    with pytest.raises(ContainerError, match=r"requirements\.lock: not found.*make wheels"):
        container.image_tag(ctx)


def test_labels_carry_the_content_hashes(tmp_path):
    ctx = _context_copy(tmp_path)
    labels = container.image_labels(ctx, {"BASE_IMAGE": "local/debian:bookworm"})
    content = container.image_content(ctx)
    assert labels["nb-evidence.content-tag"] == content.tag
    assert labels["nb-evidence.dockerfile-sha256"] == content.dockerfile_sha256
    assert labels["nb-evidence.lock-sha256"] == content.lock_sha256
    assert labels["nb-evidence.build-args"] == '{"BASE_IMAGE": "local/debian:bookworm"}'


def test_image_env_sets_what_the_manifest_reads():
    info = ImageInfo(
        tag="nb-evidence:0123456789ab",
        id="sha256:" + "1" * 64,
        repo_digests=("a@sha256:" + "2" * 64, "b@sha256:" + "3" * 64),
        dockerfile_sha256="4" * 64,
        lock_sha256="5" * 64,
        content_sha256="6" * 64,
        base_image="local/debian:bookworm",
        build_args=(("BASE_IMAGE", "local/debian:bookworm"),),
        engine_version="20.10.24",
    )
    env = info.env()
    assert set(env) == set(CONTAINER_VARS.values())
    assert env["NB_CONTAINER_REPO_DIGESTS"] == "a@sha256:" + "2" * 64 + ",b@sha256:" + "3" * 64
    assert env["NB_CONTAINER_BUILD_ARGS"] == '{"BASE_IMAGE": "local/debian:bookworm"}'


# ------------------------------------------------------------------------------ with an engine


@pytest.fixture(scope="module")
def engine(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def image(engine) -> ImageInfo:
    return container.ensure_image(engine, REPO, base_image=BASE_IMAGE)


def _probe(engine, image, script: str, **kwargs):
    """Run a shell script in the image, in place of its nb-evidence entrypoint."""
    return container.run(engine, image, ["-c", script], entrypoint=["sh"], **kwargs)


def test_ensure_image_returns_the_id_docker_reports(engine, image):
    assert image.tag == container.image_tag(REPO)
    docker_cli = shutil.which("docker")
    assert docker_cli, "the docker CLI is needed to cross-check the SDK's answer"
    inspected = subprocess.run(
        [docker_cli, "image", "inspect", "--format", "{{.Id}}", image.tag],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert image.id == inspected
    assert image.dockerfile_sha256 == _sha256(REPO / "Dockerfile")
    assert image.lock_sha256 == _sha256(REPO / "wheels" / "requirements.lock")
    assert image.engine_version == engine.version
    assert image.base_image  # the Dockerfile's own label: which base it was built on
    # Found again, not rebuilt.
    events: list[ContainerEvent] = []
    again = container.ensure_image(engine, REPO, on_event=events.append)
    assert again.id == image.id
    assert [e.kind for e in events] == ["image"]


def test_image_holds_the_pinned_toolchain(engine, image):
    outcome = _probe(
        engine,
        image,
        "gcc -dumpfullversion; dpkg-query -W -f='${Package} ${Version}\\n' gcc-12 libgomp1; "
        "python3 --version; python -c 'import torch; print(\"torch\", torch.__version__)'; "
        "command -v nb-evidence",
    )
    assert outcome.exit_code == 0, outcome.logs_tail
    lines = outcome.stdout.splitlines()
    assert lines[0] == "12.2.0"
    assert "gcc-12 12.2.0-14+deb12u1" in lines
    assert "libgomp1 12.2.0-14+deb12u1" in lines
    assert any(line.startswith("Python 3.11.") for line in lines)
    assert "torch 2.13.0+cpu" in lines
    assert "/opt/nb-evidence/bin/nb-evidence" in lines


def test_run_has_no_network(engine, image):
    # A UDP connect() sends no packet: it only asks the kernel for a route, which a container
    # with network_mode=none (loopback only) does not have.
    script = (
        "import os, socket\n"
        "print('interfaces', ' '.join(sorted(os.listdir('/sys/class/net'))))\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.connect(('1.1.1.1', 53))\n"
        "    print('route to 1.1.1.1')\n"
        "except OSError as exc:\n"
        "    print('errno', exc.errno)\n"
    )
    outcome = container.run(engine, image, ["-c", script], entrypoint=["python3"])
    assert outcome.exit_code == 0, outcome.logs_tail
    assert "interfaces lo" in outcome.stdout.splitlines()
    assert f"errno {errno.ENETUNREACH}" in outcome.stdout.splitlines()


def test_read_only_mount_refuses_writes(engine, image, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "kept.txt").write_text("original\n")
    outcome = _probe(
        engine, image, "cat /repo/kept.txt && echo changed > /repo/kept.txt",
        mounts=[Mount(repo, "/repo")],
    )
    assert outcome.exit_code != 0
    assert "original" in outcome.stdout
    assert "Read-only file system" in outcome.stderr
    assert (repo / "kept.txt").read_text() == "original\n"


def test_files_on_a_writable_mount_belong_to_the_invoking_user(engine, image, tmp_path):
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    outcome = _probe(
        engine, image, "echo hi > /bundles/out.txt", mounts=[Mount(bundles, "/bundles", read_only=False)]
    )
    assert outcome.exit_code == 0, outcome.logs_tail
    st = (bundles / "out.txt").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_an_explicit_uid_without_passwd_entry_writes_as_itself_and_has_a_home(engine, image, tmp_path):
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    bundles.chmod(0o777)
    script = (
        "import os, pathlib, matplotlib\n"
        "pathlib.Path(os.environ['HOME'], 'probe').write_text('x')\n"
        "print(os.getuid(), os.getgid(), os.environ['HOME'], matplotlib.get_configdir())\n"
        "pathlib.Path('/bundles/by-uid.txt').write_text('x')\n"
    )
    outcome = container.run(
        engine, image, ["-c", script], entrypoint=["python3"], user="4321:4321",
        mounts=[Mount(bundles, "/bundles", read_only=False)],
    )
    assert outcome.exit_code == 0, outcome.logs_tail
    assert outcome.stdout.split() == ["4321", "4321", "/tmp", "/tmp"]
    st = (bundles / "by-uid.txt").stat()
    assert (st.st_uid, st.st_gid) == (4321, 4321)


def test_memory_and_pid_limits_apply(engine, image):
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    )
    outcome = _probe(engine, image, script, mem_limit="256m", pids_limit=64)
    assert outcome.exit_code == 0, outcome.logs_tail
    assert outcome.stdout.split() == [str(256 * 1024 * 1024), "64"]


def test_run_streams_lines_returns_the_exit_code_and_removes_the_container(engine, image):
    events: list[ContainerEvent] = []
    outcome = _probe(
        engine, image, "echo one; echo two >&2; printf 'three'; exit 3",
        env={"NB_PROBE": "x"}, on_event=events.append,
    )
    assert outcome.exit_code == 3
    assert ContainerEvent("stdout", "one") in events
    assert ContainerEvent("stderr", "two") in events
    assert ContainerEvent("stdout", "three") in events  # the unterminated last line too
    assert outcome.stdout == "one\nthree"
    assert set(outcome.logs_tail) == {"one", "two", "three"}
    started = next(e.message for e in events if e.kind == "run" and e.message.startswith("started "))
    short_id = started.split()[1]
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"id={short_id}", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert left == ""


def test_entrypoint_is_nb_evidence(engine, image):
    outcome = container.run(engine, image, ["--help"])
    assert outcome.exit_code == 0, outcome.logs_tail
    assert "capture" in outcome.stdout


def test_run_past_its_timeout_is_killed(engine, image):
    outcome = _probe(engine, image, "sleep 60", timeout_s=2)
    assert outcome.timed_out
    assert outcome.exit_code != 0
    assert outcome.duration_s < 30


def test_missing_mount_source_is_a_container_error(engine, image, tmp_path):
    with pytest.raises(ContainerError, match="no such file or directory"):
        _probe(engine, image, "true", mounts=[Mount(tmp_path / "absent", "/repo")])


def test_an_unknown_tag_is_a_container_error(engine):
    with pytest.raises(ContainerError) as caught:
        container.ensure_image(engine, REPO, tag="nb-evidence:not-ours")
    message = str(caught.value)
    assert "\n" not in message
    assert "nb-evidence:not-ours" in message
    assert container.image_tag(REPO) in message
    assert "cannot be built" in message


def test_a_failed_build_carries_the_builder_log(engine, image, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "wheels").mkdir(parents=True)
    (ctx / "wheels" / "requirements.lock").write_text("# empty\n")
    (ctx / "Dockerfile").write_text(f"FROM {image.id}\nUSER root\nRUN echo about-to-fail && exit 7\n")
    with pytest.raises(ContainerBuildError) as caught:
        container.ensure_image(engine, ctx)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"building {container.image_tag(ctx)} failed: ")
    assert "about-to-fail" in caught.value.log_tail
    assert 0 < len(caught.value.log_tail) <= container.LOG_TAIL


def test_make_image_runs_the_seams_build():
    recipe = subprocess.run(["make", "-n", "image"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DOCKER": "true"}).stdout
    assert "-m cli image build --base-image" in recipe and "--tag nb-evidence:cpu" in recipe
    assert "docker build" not in recipe  # the docker CLI no longer builds the CPU image


def test_image_build_command_tags_the_image_a_capture_uses(engine, image):
    extra = "nb-evidence:test-image-build"
    proc = subprocess.run([sys.executable, "-m", "cli", "image", "build", "--quiet",
                           "--base-image", BASE_IMAGE, "--tag", extra], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    try:
        assert proc.returncode == 0, proc.stderr
        assert re.fullmatch(rf"image: {re.escape(image.tag)} = {extra}, id {image.id}, \d+ bytes, "
                            r"built in \d+s", proc.stdout.strip()), proc.stdout
        assert engine.client.images.get(extra).id == image.id
    finally:
        try:
            engine.client.images.remove(extra)
        except Exception:  # noqa: BLE001 - only cleanup; the assertions above say what failed
            pass
