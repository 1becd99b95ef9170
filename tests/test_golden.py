"""Golden bundle: a real capture of manifests/minibragg-roi.toml, normalized, must equal the copy
stored in tests/golden/minibragg-roi/ (manifest, every Parquet table, report.md).

It is the safety net for restructuring: behaviour may not change unless an issue changes it, and
then the golden copy is renewed on purpose with ``NB_GOLDEN_UPDATE=1 pytest tests/test_golden.py``
and the diff reviewed. What varies from run to run (times, durations, memory, paths, ids, the
commit, the host) is replaced by placeholders; everything else must match exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "minibragg-roi"
SPEC = REPO / "manifests" / "minibragg-roi.toml"

# Values that differ between two identical captures, by JSON key or Parquet column.
VOLATILE_KEYS = {"start_utc", "end_utc", "wall_s", "peak_rss_kb", "created_utc", "commit",
                 "dirty", "repo_commit", "repo_diff_sha256", "repo_dirty", "environment", "host_repo", "elapsed_s"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")
BUNDLE_ID = re.compile(r"\d{8}T\d{6}Z-[a-z0-9-]+-[0-9a-f]{8}")
SCRATCH = re.compile(r"/[^\s\"'`]*?nb-evidence-[a-z0-9_]{8}")
# Bundle files whose bytes carry times or paths; their content is checked below, normalized.
RENDERED = re.compile(r"^(manifest\.json|report\.md|ro-crate-metadata\.json|commands\.parquet"
                      r"|logs/.*|plots/.*)$")


def _text(s: str, subs: dict[str, str]) -> str:
    for old, new in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        if old:
            s = s.replace(old, new)
    s = SCRATCH.sub("<scratch>", s)
    s = BUNDLE_ID.sub("<bundle-id>", s)
    return TIME.sub("<time>", s)


def _normalize(obj, subs: dict[str, str]):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in VOLATILE_KEYS:
                out[k] = "<volatile>"
            elif k == "env" and isinstance(v, dict):
                out[k] = {name: "<env>" for name in sorted(v)}
            else:
                out[k] = _normalize(v, subs)
        return out
    if isinstance(obj, list):
        return [_normalize(v, subs) for v in obj]
    if isinstance(obj, str):
        return _text(obj, subs)
    return obj


def _manifest(bundle: Path, subs: dict[str, str]) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    for f in m["files"]:
        if RENDERED.match(f["path"]):
            f["size"] = f["sha256"] = "<rendered>"
    for c in m["commands"]:
        for stream in ("stdout", "stderr"):
            if c.get(stream) and c["role"] != "run":
                c[stream]["size"] = c[stream]["sha256"] = "<log>"
    return _normalize(m, subs)


def _table(path: Path, subs: dict[str, str]) -> dict:
    t = pq.read_table(path)
    if "env" in t.column_names:  # a JSON object per command: its names matter, not its values
        t = t.set_column(t.column_names.index("env"), "env", [[
            json.dumps(sorted(json.loads(e))) for e in t.column("env").to_pylist()]])
    rows = [{k: ("<volatile>" if k in VOLATILE_KEYS or k in {"stdout_sha256", "stderr_sha256",
                                                               "stdout_size", "stderr_size"}
                  else v) for k, v in row.items()} for row in t.to_pylist()]
    return {"schema": [f"{f.name}: {f.type}" for f in t.schema],
            "rows": json.loads(json.dumps(_normalize(rows, subs), default=str))}


def _report(text: str, subs: dict[str, str]) -> str:
    text = _text(text, subs)
    out, section = [], ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line
        if section == "## Environment" and (line.startswith("- ") or line.startswith("| ")):
            line = line.split(":")[0] if line.startswith("- ") else line.split("|")[1]
        elif section == "## Commands run" and line.startswith("| ") and "---" not in line:
            line = re.sub(r"\| [0-9.]+ \|$", "| <s> |", line)
        out.append(line)
    return "\n".join(out) + "\n"


def normalized_bundle(bundle: Path) -> dict[str, str]:
    """Every golden file's normalized text, by file name."""
    m = json.loads((bundle / "manifest.json").read_text())
    roots = m["arguments"]["roots"]
    subs = {roots["scratch"]: "<scratch>", roots["repo"]: "<repo>", roots["python"]: "<python>",
            str(bundle.parent): "<bundles>", str(bundle.parent.resolve()): "<bundles>",
            sys.executable: "<python>"}
    files = {"manifest.json": json.dumps(_manifest(bundle, subs), indent=1, sort_keys=True) + "\n",
             "report.md": _report((bundle / "report.md").read_text(), subs)}
    for table in sorted(bundle.glob("*.parquet")):
        files[table.name + ".json"] = json.dumps(_table(table, subs), indent=1) + "\n"
    return files


# Set in this process by an earlier test on the same worker that imported minibragg.__main__ (it
# sets it for torch): the recorded environment would then depend on test order.
_LEAKED = {"KMP_DUPLICATE_LIB_OK"}


@pytest.mark.xdist_group("capture")
def test_golden_minibragg_roi_bundle(tmp_path):
    bundles = tmp_path / "bundles"
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--native",
                           "--quiet", "--bundles", str(bundles)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("NB_") and k not in _LEAKED})
    assert proc.returncode == 0, proc.stderr
    (bundle,) = [p for p in bundles.iterdir() if not p.name.startswith(".")]
    got = normalized_bundle(bundle)
    if os.environ.get("NB_GOLDEN_UPDATE") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.iterdir():
            old.unlink()
        for name, text in got.items():
            (GOLDEN / name).write_text(text)
    want = {p.name: p.read_text() for p in sorted(GOLDEN.iterdir())}
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs from tests/golden/minibragg-roi/{name}"
