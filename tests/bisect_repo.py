"""A real git repository made of minibragg's files, for bisect's tests and bench: a history of
commits that touch only docs, only the C file (a harmless comment), break the C build (fixed in
the next commit), or inject a fault into the PyTorch engine. Plus a small ROI spec (seconds per
capture) and a snapshot of everything bisect must leave alone."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROI_SPEC = REPO / "manifests" / "minibragg-roi.toml"
C_FILE = "minibragg/minibragg.c"
# tests/test_roots_faults.py's FLUENCE fault: fluence_photons_per_m2 ten times too large.
FAULT = ("minibragg/config.py", "        return config.flux * config.exposure / (beam_m * beam_m)\n",
         "        return 10.0 * config.flux * config.exposure / (beam_m * beam_m)\n")
FAULT_KEY = "fluence_photons_per_m2"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t",
                           *args], check=True, capture_output=True, text=True).stdout


def small_spec(path: Path) -> Path:
    """The ROI spec with a 11 x 11 pixel region around its traced pixel."""
    text = ROI_SPEC.read_text().replace('"-roi", "600", "760", "980", "1100"',
                                        '"-roi", "680", "690", "1034", "1044"')
    assert '"680", "690"' in text
    path.write_text(text.replace('name = "minibragg-roi"', 'name = "small-roi"'))
    return path


def _edit(repo: Path, kind: str, i: int) -> None:
    if kind == "docs":
        with open(repo / "NOTES.md", "a") as fh:
            fh.write(f"note {i}\n")
    elif kind == "c-comment":
        with open(repo / C_FILE, "a") as fh:
            fh.write(f"/* a harmless comment {i} */\n")
    elif kind == "c-broken":
        with open(repo / C_FILE, "a") as fh:
            fh.write("this is not C;\n")
    elif kind == "c-fixed":
        text = (repo / C_FILE).read_text().replace("this is not C;\n", "")
        (repo / C_FILE).write_text(text)
    elif kind == "fault":
        f, old, new = FAULT
        text = (repo / f).read_text()
        assert old in text
        (repo / f).write_text(text.replace(old, new))
    else:
        raise ValueError(kind)


def make_history(root: Path, kinds: list[str]) -> tuple[Path, list[str]]:
    """A repo whose first commit is minibragg as shipped, then one commit per kind; returns the
    repo and the shas, oldest first (index 0 the initial commit)."""
    repo = root / "repo"
    shutil.copytree(REPO / "minibragg", repo / "minibragg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "NOTES.md").write_text("notes\n")
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "minibragg as shipped")
    shas = [git(repo, "rev-parse", "HEAD").strip()]
    for i, kind in enumerate(kinds, start=1):
        _edit(repo, kind, i)
        git(repo, "commit", "-qam", f"{kind} {i}")
        shas.append(git(repo, "rev-parse", "HEAD").strip())
    return repo, shas


def snapshot(repo: Path) -> dict:
    """Every file's sha256 (.git included), the refs, the worktrees and the status."""
    files = {}
    for p in sorted(repo.rglob("*")):
        if p.is_file() or p.is_symlink():
            files[str(p.relative_to(repo))] = hashlib.sha256(p.read_bytes()).hexdigest()
    plain = ["git", "--no-optional-locks", "-C", str(repo)]
    run = lambda *a: subprocess.run([*plain, *a], capture_output=True, text=True).stdout  # noqa: E731
    return {"files": files, "refs": run("for-each-ref"), "head": run("rev-parse", "HEAD"),
            "worktrees": run("worktree", "list", "--porcelain"),
            "status": run("status", "--porcelain")}


def c_digest(repo: Path, sha: str) -> str:
    return hashlib.sha256(git(repo, "show", f"{sha}:{C_FILE}").encode()).hexdigest()
