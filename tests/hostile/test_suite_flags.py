"""Bad suite flags: one line naming the flag, exit 2, nothing written."""

from __future__ import annotations

import pytest

from capture_hostile import one_error_line, run_cli
from suite_hostile import slow_suite


@pytest.mark.parametrize("flags, words", [
    (["--only", "nope"], "--only nope"),
    (["--only", "c/r9"], "--only c/r9"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers and --scheduler"),
    (["--threads-per-run", "0"], "--threads-per-run 0"),
    (["--workers", "0"], "--workers 0"),
    (["--trace", "some"], "--trace some"),
    (["--scheduler", "127.0.0.1:8786"], "--scheduler 127.0.0.1:8786"),
])
def test_bad_flags_are_one_line_exit_2(tmp_path, flags, words):
    repo, suite, _pids = slow_suite(tmp_path, runs=1, sleep=0)
    line = one_error_line(run_cli("suite", str(suite), "--repo", str(repo), "--bundles",
                                  str(tmp_path / "b"), *flags, cwd=tmp_path))
    assert words in line
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
