"""The user's git repository, read and borrowed, never changed: revisions resolved, the commit
list between ``--good`` and ``--bad``, subjects and files changed, and detached worktrees in our
own scratch directory for the commits probed.

git runs with every ``GIT_*`` variable scrubbed (a caller's GIT_DIR or GIT_INDEX_FILE would point
it elsewhere), ``core.hooksPath=/dev/null`` (``worktree add`` runs post-checkout hooks: a foreign
command) and ``core.fsmonitor=false`` (a configured monitor is a command too), and
``--no-optional-locks`` so reading the status does not rewrite the user's index. Content filters
(LFS smudge) are left as they are: a checkout of this repository runs them anyway.

What a worktree adds under ``.git/worktrees/`` is removed with it (``worktree remove --force``,
then ``worktree prune``), on success, error or Ctrl-C alike.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bundle.model.errors import UserError

SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
               "-c", "advice.detachedHead=false")
DIRTY_NOTE = "only committed trees are probed; uncommitted changes are ignored"


class GitError(UserError):
    """A revision, a range or the repository itself is not what bisect needs."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    return env


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """One git command in ``repo`` with the safe configuration; a failure raises GitError with
    git's own first line."""
    proc = subprocess.run(["git", "--no-optional-locks", *SAFE_CONFIG, "-C", str(repo), *args],
                          capture_output=True, text=True, env=git_env(), stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise GitError(f"--repo {repo}: git {args[0]} failed: {said}")
    return proc


def repo_root(repo: Path) -> Path:
    if not repo.is_dir():
        raise GitError(f"--repo {repo}: not a directory")
    proc = git(repo, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise GitError(f"--repo {repo}: not a git repository")
    return Path(proc.stdout.strip())


def resolve(repo: Path, rev: str, flag: str) -> str:
    """The commit sha a revision names; an unknown one is a GitError naming the flag."""
    if rev.startswith("-"):
        raise GitError(f"{flag} {rev}: not a revision")
    proc = git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
               check=False)
    if proc.returncode != 0:
        raise GitError(f"{flag} {rev}: no such commit in {repo}")
    return proc.stdout.strip()


def commit_range(repo: Path, good: str, bad: str, good_rev: str, bad_rev: str) -> list[Commit]:
    """good, then every commit on the first-parent ancestry path to bad, oldest first."""
    if good == bad:
        raise GitError(f"--good {good_rev} and --bad {bad_rev} are the same commit")
    if git(repo, "merge-base", "--is-ancestor", good, bad, check=False).returncode != 0:
        raise GitError(f"--good {good_rev} is not an ancestor of --bad {bad_rev}")
    out = git(repo, "log", "--ancestry-path", "--first-parent", "--format=%H%x00%s",
              f"{good}..{bad}").stdout
    commits = [Commit(*line.split("\0", 1)) for line in out.splitlines() if line]
    commits.reverse()
    if not commits or commits[-1].sha != bad:
        raise GitError(f"--bad {bad_rev} is not on the first-parent line from --good {good_rev}")
    return [Commit(good, subject(repo, good)), *commits]


def subject(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%s", sha).stdout.strip()


def files_changed(repo: Path, sha: str) -> list[str]:
    """The paths a commit changed against its first parent."""
    out = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", "-m",
              "--first-parent", sha).stdout
    return sorted(set(out.splitlines()) - {""})


def dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain").stdout.strip())


def add_worktree(repo: Path, scratch: Path, sha: str) -> Path:
    """A detached checkout of ``sha`` at ``scratch/<sha>``."""
    path = scratch / sha
    git(repo, "worktree", "add", "--detach", "--force", str(path), sha)
    return path


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove one of our worktrees and its record under .git/worktrees (errors ignored: this
    runs in cleanup, and prune catches what remove could not)."""
    git(repo, "worktree", "remove", "--force", "--force", str(path), check=False)
    git(repo, "worktree", "prune", check=False)
