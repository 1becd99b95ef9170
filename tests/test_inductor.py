"""Issue 17 and issue 16's CLI side: a users' port that calls torch.compile (inductor compiles C++
at run time on CPU), the target repo's declared dependencies checked before anything runs, and the
CUDA flags refused in one line on a machine without a GPU.

The fixture checkouts are the nanobragg-layout ones of test_nanobragg_target, with a PyTorch package
that really calls torch.compile inside the traced computation (the solid angle, a trace key) and a
pyproject.toml declaring dependencies. Container tests run against a real Docker engine and this
checkout's image, and skip only when no engine answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.capture import environment, preflight
from bundle.capture.spec import load_spec
from bundle.model.errors import SpecError
from test_nanobragg_target import _checkout, _replace

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "manifests" / "minibragg-roi.toml"
CACHE_LINE = re.compile(r"^inductor-cache-files: (\d+)$", re.MULTILINE)

# What both the project's venv and the CPU image have; the marker line is not needed on Linux.
PRESENT = ["torch>=2.3", "numpy", "matplotlib", "pywin32>=300; sys_platform == 'win32'"]
MISSING = ["nb-evidence-no-such-dist>=1", "torch>=99"]


def _pyproject(deps: list[str]) -> str:
    return ('[project]\nname = "nanobrag-torch"\nversion = "0.1.0"\ndependencies = [\n'
            + "".join(f"    {json.dumps(d)},\n" for d in deps) + "]\n")


def _compiled(pkg: Path) -> None:
    """The solid angle goes through torch.compile (dynamic shapes: the chunks differ in size), and
    the process reports at exit how many compiled artefacts inductor left in its cache."""
    engine = pkg / "engine.py"
    _replace(engine, "    return k.pixel_sqr / (r * r) * k.close_distance / r\n",
             "    return _omega_compiled(k.pixel_sqr, k.close_distance, r)\n")
    engine.write_text(engine.read_text() + '''

def _omega_core(pixel_sqr, close_distance, r):
    return pixel_sqr / (r * r) * close_distance / r


_omega_compiled = torch.compile(_omega_core, dynamic=True)


def _report_inductor_cache():
    import os as _os, pathlib as _pathlib
    root = _pathlib.Path(_os.environ.get("TORCHINDUCTOR_CACHE_DIR", "/nonexistent"))
    found = sum(1 for p in root.rglob("*") if p.suffix in (".so", ".cpp"))
    print(f"inductor-cache-files: {found}", flush=True)


import atexit as _atexit
_atexit.register(_report_inductor_cache)
''')


def _repo(root: Path, deps: list[str], compiled: bool) -> Path:
    def patch(pkg: Path) -> None:
        (pkg.parent.parent / "pyproject.toml").write_text(_pyproject(deps))
        if compiled:
            _compiled(pkg)
    return _checkout(root, patch)


def _capture(repo: Path, bundles: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--target", "nanobragg",
                           "--repo", str(repo), "--bundles", str(bundles), "--json", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


def _manifest(out: dict) -> dict:
    return json.loads((Path(out["bundle"]) / "manifest.json").read_text())


def _no_bundle(bundles: Path) -> bool:
    return not bundles.exists() or not [p for p in bundles.iterdir() if not p.name.startswith(".")]


# --------------------------------------------------------------------------------- pure parts


def test_declared_dependencies_are_checked_by_name_version_and_marker():
    deps = preflight.declared_dependencies(_pyproject(PRESENT + MISSING + ["Py_Yaml"]), "x/pyproject.toml")
    installed = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "matplotlib": "3.11.2", "py-yaml": "6"}
    unmet = preflight.check(deps, installed)
    assert [(u.name, u.installed) for u in unmet] == [("nb-evidence-no-such-dist", None),
                                                      ("torch", "2.13.0+cpu")]
    assert unmet[1].describe() == "torch>=99 (installed 2.13.0+cpu)"
    assert preflight.declared_dependencies("[tool.x]\n", "p") == ()


@pytest.mark.parametrize("text, what", [("[project\n", "not valid TOML"),
                                        ('[project]\ndependencies = "torch"\n', "list of strings")])
def test_unreadable_declaration_names_the_file(text, what):
    with pytest.raises(SpecError, match=f"^x/pyproject.toml: .*{what}"):
        preflight.declared_dependencies(text, "x/pyproject.toml")


def test_in_container_refusal_is_one_line_naming_each_and_the_image(tmp_path):
    (tmp_path / "pyproject.toml").write_text(_pyproject(PRESENT + MISSING))
    with pytest.raises(SpecError) as caught:
        preflight.enforce(tmp_path, {"image_tag": "nb-evidence:abc123", "image_id": "sha256:1"})
    line = str(caught.value)
    assert "\n" not in line and "nb-evidence:abc123" in line
    assert "nb-evidence-no-such-dist>=1 (not installed)" in line and "torch>=99 (installed" in line
    [note] = preflight.enforce(tmp_path, None)  # natively: a warning, nothing raised
    assert note.startswith("warning: ") and "nb-evidence-no-such-dist" in note


def test_a_cache_directory_the_user_names_wins_over_the_profiles():
    extra = {"TORCHINDUCTOR_CACHE_DIR": "/scratch/inductor", "KMP_DUPLICATE_LIB_OK": "TRUE"}
    assert environment.command_env(extra, {})["TORCHINDUCTOR_CACHE_DIR"] == "/scratch/inductor"
    mine = environment.command_env(extra, {"TORCHINDUCTOR_CACHE_DIR": "/warm"})
    assert mine["TORCHINDUCTOR_CACHE_DIR"] == "/warm" and mine["KMP_DUPLICATE_LIB_OK"] == "TRUE"


def test_torch_cuda_version_is_read_without_importing_torch():
    code = ("import sys; from bundle.capture import environment as e; v = e.torch_cuda_version(); "
            "print(repr(v), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "False"
    import torch  # here only, to know what it should have said
    assert out[0] == repr(torch.version.cuda)


# --------------------------------------------------------------------------------- native


@pytest.fixture(scope="module")
def compiled_repo(tmp_path_factory) -> Path:
    return _repo(tmp_path_factory.mktemp("compiled"), PRESENT, compiled=True)


@pytest.fixture(scope="module")
def missing_repo(tmp_path_factory) -> Path:
    return _repo(tmp_path_factory.mktemp("missing"), PRESENT + MISSING, compiled=False)


def test_compiled_port_natively_is_parity_with_inductor_cache_in_scratch(compiled_repo, tmp_path):
    proc = _capture(compiled_repo, tmp_path / "b", "--keep-scratch")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "parity" and out["keys_compared"] == 40 and out["notes"] == []
    manifest = _manifest(out)
    scratch = manifest["arguments"]["roots"]["scratch"]
    run_py = next(c for c in manifest["commands"] if c["step"] == "run-py")
    assert run_py["env"]["TORCHINDUCTOR_CACHE_DIR"] == f"{scratch}/inductor"
    assert run_py["env"]["TRITON_CACHE_DIR"] == f"{scratch}/triton"
    log = (Path(out["bundle"]) / run_py["stdout"]["path"]).read_text()
    assert int(CACHE_LINE.search(log).group(1)) > 0  # inductor really compiled C++, into scratch
    assert list(Path(scratch, "inductor").rglob("*.so"))
    # Inductor's precompiled headers follow TMPDIR, not TORCHINDUCTOR_CACHE_DIR: in scratch too,
    # never in the machine's own temp directory.
    assert run_py["env"]["TMPDIR"] == scratch
    assert list(Path(scratch).glob("torchinductor_*/precompiled_headers"))


def test_missing_dependency_only_warns_natively(missing_repo, tmp_path):
    proc = _capture(missing_repo, tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "parity"
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert "nb-evidence-no-such-dist>=1 (not installed)" in warning and "torch>=99" in warning
    assert _manifest(out)["notes"] == [warning]


@pytest.mark.skipif(environment.gpu_present(), reason="an NVIDIA GPU is present: --py-device cuda is valid here")
@pytest.mark.parametrize("where", ["--native", "--in-container"])
def test_py_device_cuda_without_gpu_is_one_line_exit_2(where, tmp_path):
    # No engine at all: the refusal must come before any container work.
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--bundles",
                           str(tmp_path / "b"), "--py-device", "cuda", where],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--py-device cuda" in lines[0] and "no NVIDIA GPU" in lines[0]
    assert not (tmp_path / "b").exists()


def test_gpu_wanted_from_the_spec_or_the_flag():
    spec = load_spec(SPEC)
    assert not preflight.wants_gpu(spec) and preflight.wants_gpu(spec, "cuda")
    assert preflight.device_refusal(spec, gpu_present=True, py_device="cuda") is None
    assert preflight.device_refusal(spec, gpu_present=False, py_device="cpu") is None


# --------------------------------------------------------------------------------- container


@pytest.fixture(scope="module")
def image(docker_engine):
    from bundle.container import docker_seam as container

    return container.ensure_image(docker_engine, REPO, base_image=container.default_base(docker_engine))


@pytest.mark.xdist_group("container")
def test_compiled_port_in_container_is_parity_and_records_the_cache(image, compiled_repo, tmp_path):
    proc = _capture(compiled_repo, tmp_path / "b", "--in-container")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "parity" and out["notes"] == []
    manifest = _manifest(out)
    assert manifest["environment"]["container"]["image_id"] == image.id
    scratch = manifest["arguments"]["roots"]["scratch"]
    run_py = next(c for c in manifest["commands"] if c["step"] == "run-py")
    assert run_py["env"]["TORCHINDUCTOR_CACHE_DIR"] == f"{scratch}/inductor"
    log = (Path(out["bundle"]) / run_py["stdout"]["path"]).read_text()
    assert int(CACHE_LINE.search(log).group(1)) > 0


@pytest.mark.xdist_group("container")
def test_missing_dependency_in_container_is_one_line_exit_2(image, missing_repo, tmp_path):
    proc = _capture(missing_repo, tmp_path / "b", "--in-container")
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert image.tag in lines[0] and str(missing_repo) in lines[0]
    assert "nb-evidence-no-such-dist>=1 (not installed)" in lines[0] and "torch>=99" in lines[0]
    assert _no_bundle(tmp_path / "b")  # refused before any engine ran: nothing written


@pytest.mark.xdist_group("container")
def test_image_cuda_missing_says_make_image_cuda_without_gpu(docker_engine, tmp_path):
    env = {**os.environ, "NB_IMAGE_CUDA": "nb-evidence:no-such-cuda-image"}
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--bundles",
                           str(tmp_path / "b"), "--in-container", "--image", "cuda"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "make image-cuda" in lines[0] and "no-such-cuda-image" in lines[0]
    assert _no_bundle(tmp_path / "b")
