"""bundle.model.files: the one atomic write and the one error-line formatter, on real files."""

from __future__ import annotations

import os

import pytest

from bundle.model.files import one_line, write_atomic


def test_replace_keeps_the_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "fix_plan.md"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o600
    assert os.listdir(tmp_path) == ["fix_plan.md"]


def test_exclusive_never_replaces_and_names_the_file(tmp_path):
    path = tmp_path / "a.json"
    write_atomic(path, b"first", exclusive=True, mode=0o644)
    with pytest.raises(FileExistsError) as caught:
        write_atomic(path, b"second", exclusive=True)
    assert caught.value.filename == str(path)
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["a.json"]


def test_a_failed_check_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"theirs")

    def refuse() -> None:
        raise RuntimeError("changed meanwhile")

    with pytest.raises(RuntimeError):
        write_atomic(path, b"ours", check=refuse)
    assert path.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["f"]


def test_one_line_collapses_cuts_and_names_a_silent_exception():
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 50, limit=10) == "x" * 9 + "…"
    assert one_line(KeyError()) == "KeyError"
