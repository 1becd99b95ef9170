"""bisect checks commits out with ``git worktree add``, which runs the repository's post-checkout
hook: a command from someone else's repository. It must not run, whether it sits in .git/hooks
or in a directory the repository's config names (core.hooksPath); and a caller's GIT_DIR must
not steer bisect's git to another repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bisect_repo import git, make_history, small_spec, snapshot

HOOK = "#!/bin/sh\necho ran >> {marker}\n"


@pytest.mark.xdist_group("bisect")
def test_post_checkout_hooks_do_not_run(tmp_path):
    repo, shas = make_history(tmp_path, ["fault"])
    small_spec(tmp_path / "spec.toml")
    markers = [tmp_path / "hook-in-git-dir", tmp_path / "hook-in-hooks-path"]
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(HOOK.format(marker=markers[0]))
    hook.chmod(0o755)
    elsewhere = tmp_path / "their-hooks"
    elsewhere.mkdir()
    (elsewhere / "post-checkout").write_text(HOOK.format(marker=markers[1]))
    (elsewhere / "post-checkout").chmod(0o755)
    # the hook does run for a plain checkout: this test would notice if it ran for bisect
    subprocess.run([str(hook)], check=True)
    assert markers[0].read_text() == "ran\n"
    markers[0].unlink()
    before = snapshot(repo)
    env = {**os.environ, "GIT_DIR": str(tmp_path / "nowhere"), "GIT_WORK_TREE": "/"}
    for hooks_path in (None, elsewhere):
        if hooks_path is not None:
            git(repo, "config", "core.hooksPath", str(hooks_path))
            before = snapshot(repo)
        proc = subprocess.run([sys.executable, "-m", "cli", "bisect", str(tmp_path / "spec.toml"),
                               "--repo", str(repo), "--good", shas[0], "--bad", shas[1],
                               "--bundles", str(tmp_path / "bundles"), "--json"],
                              capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["result"]["first_bad"]["sha"] == shas[1]
        assert not any(m.exists() for m in markers)
        assert snapshot(repo) == before
