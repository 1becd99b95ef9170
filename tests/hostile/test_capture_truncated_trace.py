"""A capture whose engine prints a key past the trace caps (bundle.analysis.trace) compares only
what it kept: the bundle says so in a note and is never a complete parity."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bundle.analysis.trace import MAX_OCCURRENCES  # noqa: E402
from test_capture import make_repo, run_cli  # noqa: E402


def test_a_trace_past_the_caps_is_partial_and_says_so(tmp_path):
    repo = make_repo(tmp_path)
    py = (repo / "tiny.py").read_text()
    loop = ('print("TRACE_PY: steps %d" % steps)\n'
            f'                for _ in range({MAX_OCCURRENCES + 500}): '
            'print("TRACE_PY: steps %d" % steps)\n')
    assert 'print("TRACE_PY: steps %d" % steps)\n' in py
    (repo / "tiny.py").write_text(py.replace('print("TRACE_PY: steps %d" % steps)\n', loop, 1))
    proc = run_cli("capture", str(repo / "spec.toml"), "--repo", str(repo), "--bundles",
                   str(tmp_path / "b"), "--json", "--native", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "partial" and out["verdict"] != "parity"
    assert any("py: 501 key lines past the trace caps" in n for n in out["notes"]), out["notes"]
