"""Export a suite bundle into the users' reports layout: ``matrix.md`` (summary line and matrix),
``matrix.png``, ``README.md``, and for each failing run with a traced member, a directory
``<case>__<run>/`` holding that member's export (bundle.ledger.export: the engines' trace lines,
the chain table, its README).

Like a capture's export: the suite must verify intact (every member included), every target is
checked before anything is written, and nothing is ever overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from bundle.ledger.export import export_files
from bundle.model.errors import BundleError, UserError
from bundle.model.files import write_atomic
from bundle.store.archive import display_path
from bundle.suite import vocabulary as words
from bundle.suite.report import matrix_rows
from bundle.suite.store import MATRIX_PNG, load_suite_bundle, suite_root, verify_suite

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def run_dir_name(member: Mapping[str, Any]) -> str:
    return f"{_SAFE.sub('_', member['case'])}__{_SAFE.sub('_', member['run'])}"


def _traced_member(member: Mapping[str, Any]) -> str | None:
    """The member whose traces explain the run: the drill-down capture, else the image one when
    it was traced itself (a run with its own pixel)."""
    return member.get("trace_bundle") or (member.get("bundle") if member.get("first_divergence") else None)


def matrix_markdown(data: Mapping[str, Any]) -> str:
    header, rows = matrix_rows(list(data.get("members") or []))
    lines = [f"# {words.suite_title(data['name'])}", "", f"**{words.summary_line(data['summary'])}**", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines + ["", "![worst threshold margin per run](matrix.png)", ""])


def _readme(data: Mapping[str, Any], suite_path: str, runs: list[str]) -> str:
    lines = [f"# Export of suite bundle {data['suite_id']}", "",
             f"{words.summary_line(data['summary'])}. The suite bundle: `{suite_path}/` "
             f"(check it and every member with `nb-evidence verify {suite_path}`).", "",
             "- `matrix.md`: the matrix, one row per case, one cell per run",
             "- `matrix.png`: each run's worst threshold margin (below 0 fails)"]
    lines += [f"- `{r}/`: the traces and chain table of failing run {r.replace('__', ' / ')}"
              for r in runs]
    return "\n".join(lines) + "\n"


def suite_export_files(suite_dir: Path | str, to: Path | str) -> dict[str, bytes]:
    """What ``export_suite`` would write into ``to``: relative path -> content. Reads only."""
    root = suite_root(suite_dir)
    data = load_suite_bundle(root)
    files: dict[str, bytes] = {"matrix.md": matrix_markdown(data).encode("utf-8")}
    try:
        files["matrix.png"] = (root / MATRIX_PNG).read_bytes()
    except OSError as exc:
        raise BundleError(f"{root / MATRIX_PNG}: cannot read ({exc.strerror or exc})") from None
    runs = []
    for m in data["members"]:
        traced = _traced_member(m)
        if m["status"] == "pass" or not traced:
            continue
        sub = run_dir_name(m)
        for name, content in export_files(root.parent / traced, Path(to) / sub).items():
            files[f"{sub}/{name}"] = content
        runs.append(sub)
    files["README.md"] = _readme(data, display_path(root, to), runs).encode("utf-8")
    return files


def export_suite(suite_dir: Path | str, to: Path | str) -> list[Path]:
    """Write the export of an intact suite bundle into ``to`` (created when absent); refuses,
    writing nothing, when it is not intact or any target exists. Returns the written paths."""
    to = Path(to)
    checked = verify_suite(suite_dir)
    if not checked.intact:
        bad = [f"{p} {s}" for p, s in checked.files if s != "OK"]
        bad += [f"{m.bundle} {m.state}" for m in checked.members if m.state != "OK"]
        raise BundleError(f"{checked.path}: suite bundle is not intact ({bad[0]}); see `nb-evidence verify`")
    files = suite_export_files(suite_dir, to)
    if to.exists() and not to.is_dir():
        raise UserError(f"{to}: exists and is not a directory")
    clash = [to / name for name in files if os.path.lexists(to / name)]
    if clash:
        raise UserError(f"{clash[0]}: already exists; export never overwrites, nothing written")
    written: list[Path] = []
    try:
        for name, content in files.items():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(to / name, content, exclusive=True)
            written.append(to / name)
    except OSError as exc:
        for p in written:
            p.unlink(missing_ok=True)
        raise UserError(f"{getattr(exc, 'filename', None) or to}: cannot write "
                        f"({exc.strerror or exc}); nothing kept") from None
    return written
