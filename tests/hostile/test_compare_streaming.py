"""`compare` on logs too big to hold: memory stays bounded, counts stay exact.

Real files, a real `nb-evidence compare` child whose peak RSS is read from wait4. These are
memory checks, not timings: before streaming, two 20 MB logs of repeated key lines took 828 MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from bundle.analysis.offline import compare_logs
from bundle.analysis.trace import MAX_LINE, MAX_OCCURRENCES, parse_file, parse_lines

CLI = Path(sys.executable).parent / "nb-evidence"
RSS_LIMIT = 300 * 2**20
KEYS = [f"TRACE_{{e}}: key_{k:02d} {k * 0.125:.15g} {-k / 7:.15g} {k}" for k in range(40)]


def keys(engine: str) -> list[str]:
    return [k.format(e=engine) for k in KEYS]


def write_log(path: Path, head: str, block: str, size: int, tail: str = "") -> int:
    """``head``, then ``block`` repeated up to about ``size`` bytes, then ``tail``; the repeats."""
    n = max(1, (size - len(head) - len(tail)) // len(block))
    per_chunk = max(1, (4 << 20) // len(block))
    with open(path, "w", newline="") as f:
        f.write(head)
        for start in range(0, n, per_chunk):
            f.write(block * min(per_chunk, n - start))
        f.write(tail)
    return n


# Linux hands a process the peak RSS of the image it exec'd from, and a child forked (or
# vforked) from a pytest worker that has imported torch starts at that worker's few hundred MiB.
# So a small Python process starts the CLI and reports the CLI's own peak from wait4.
_MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "rss": usage.ru_maxrss * 1024,
                  "out": out.decode()}))
"""


def run_measured(*args: str | Path) -> tuple[int, int, dict]:
    """(exit status, peak RSS in bytes, JSON summary) of one `nb-evidence compare` child."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(CLI), "compare", *map(str, args),
                           "--json"], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout)
    return measured["code"], measured["rss"], json.loads(measured["out"])


def test_repeated_key_lines_keep_memory_bounded_and_say_truncated(tmp_path):
    """Two ~100 MB logs of a trace printed in a loop (about 2.2 million key lines each)."""
    ref, cand = tmp_path / "c.log", tmp_path / "py.log"
    n = write_log(ref, "minibragg banner\n", "\n".join(keys("C")) + "\n", 100_000_000)
    # As many repeats on the candidate's side, with CRLF line breaks.
    block = "\r\n".join(keys("PY")) + "\r\n"
    assert write_log(cand, "torch banner\r\n", block, len("torch banner\r\n") + n * len(block)) == n
    assert ref.stat().st_size > 95_000_000

    code, rss, summary = run_measured(ref, cand)

    assert rss < RSS_LIMIT, f"peak RSS {rss / 2**20:.0f} MiB"
    # Parity over what was compared, but parity is never claimed over lines not compared.
    assert (code, summary["verdict"]) == (1, "incomplete")
    assert summary["first_divergence"] is None
    past = 40 * (n - MAX_OCCURRENCES)
    assert summary["truncated"] == {"c": past, "py": past}
    assert any(note.startswith("truncated:") for note in summary["notes"])


def test_progress_lines_around_a_trace_keep_memory_bounded(tmp_path):
    """Two ~150 MB logs of progress lines with the 40 key lines at their two ends: parity."""
    block = "".join(f"{k % 100}% done, pixel {k} of 6224001\r" for k in range(3000)) + "\n"
    for engine in ("C", "PY"):
        lines = keys(engine)
        write_log(tmp_path / f"{engine}.log", "\n".join(lines[:20]) + "\n", block, 150_000_000,
                  "\n".join(lines[20:]) + "\n")

    code, rss, summary = run_measured(tmp_path / "C.log", tmp_path / "PY.log")

    assert rss < RSS_LIMIT, f"peak RSS {rss / 2**20:.0f} MiB"
    assert (code, summary["verdict"], summary["keys_compared"]) == (0, "parity", 40)
    assert "truncated" not in summary


def test_one_line_without_breaks_is_never_held(tmp_path):
    """60 MB with no line break between two key lines: one free line, memory stays small."""
    path = tmp_path / "noline.log"
    with open(path, "wb") as f:
        f.write(b"TRACE_C: first 1\n")
        for _ in range(60):
            f.write(b"x" * 1_000_000)
        f.write(b"TRACE_C: inside_the_long_line 2\nTRACE_C: last 3")
    tracemalloc.start()
    try:
        trace = parse_file(path, "TRACE_C")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_LINE, f"peak {peak} bytes"
    assert [e.key for e in trace.entries] == ["first", "last"]
    assert [e.line_no for e in trace.entries] == [1, 3]
    assert (trace.lines_read, trace.free_lines, trace.truncated) == (3, 1, 0)


LOOP = 80_000  # key lines of one key: about 2 MB


def _tricky_lines() -> bytes:
    """Every kind of line break and oddity, with a \\r\\n straddling the 512 KiB read size."""
    parts = [b"\xef\xbb\xbfbanner \xff\xfe invalid utf-8\r\n", b"TRACE_C: a 1 2 3\r",
             b"  TRACE_C: indented 4\n", b"\xc2\xa0TRACE_C: nbsp_first 5\n",
             b"TRACE_C:\xc2\xa0nbsp_after 6\n", b"TRACE_C: tracing pixel (1, 2)\n",
             b"TRACE_C: half 1 x\n", b"TRACE_PY: other 7\n", b"TRACE_C:\n", b"\n", b"\r\r\n"]
    body = b"".join(parts)
    filler = b"progress 50%\r" * ((1 << 19) // 13)
    pad = (1 << 19) - 1 - len(body) - len(filler)
    # A loop over several read blocks (the later ones only counted), odd lines late in it.
    loop = [b"TRACE_C: loop %d 0.5 -nan\n" % i for i in range(LOOP)]
    loop[LOOP // 2] = b"TRACE_C: loop 1 not_a_number\nTRACE_C: tracing pixel (1, 2)\n   TRACE_C: loop 7\n"
    loop[LOOP - 100] = b"TRACE_C: new_key_late 9\nTRACE_C: loop\xc2\xa01 2\n"
    return body + filler + b"y" * pad + b"\r\nTRACE_C: after_boundary 8\n" + b"".join(loop) + b"end"


@pytest.mark.parametrize("prefix", ["TRACE_C:", "TRACE_PY"])
def test_file_reading_agrees_with_line_parsing(tmp_path, prefix):
    """The chunked, regex-assisted file reader gives exactly what line-by-line parsing gives."""
    data = _tricky_lines()
    path = tmp_path / "tricky.log"
    path.write_bytes(data)
    from_file = parse_file(path, prefix)
    from_lines = parse_lines([data.decode("utf-8", errors="replace")], prefix)
    assert repr(from_file) == repr(from_lines)  # repr: nan != nan, "nan" == "nan"
    assert from_file.lines_read == len(from_file.entries) + from_file.free_lines + from_file.truncated


def test_tricky_file_counts(tmp_path):
    path = tmp_path / "tricky.log"
    path.write_bytes(_tricky_lines())
    trace = parse_file(path, "TRACE_C:")
    kept = [e.key for e in trace.entries]
    assert kept.count("loop") == MAX_OCCURRENCES and "new_key_late" in kept and "after_boundary" in kept
    # The loop's lines past MAX (two replaced by the odd lines), + "loop 1 not_a_number" (1
    # parses), "loop 1 2" (split on the nbsp) and the indented "loop 7".
    assert trace.truncated == LOOP - 2 - MAX_OCCURRENCES + 3


def _loop_log(path: Path, engine: str, count: int, bad_at: int | None = None) -> None:
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"TRACE_{engine}: pix {2.0 if i == bad_at else 1.5} {i}\n")


def test_divergence_within_the_kept_occurrences_is_found(tmp_path):
    _loop_log(tmp_path / "c.log", "C", 3 * MAX_OCCURRENCES)
    _loop_log(tmp_path / "py.log", "PY", 3 * MAX_OCCURRENCES, bad_at=MAX_OCCURRENCES // 2)
    out = compare_logs(tmp_path / "c.log", tmp_path / "py.log")
    assert out.summary["verdict"] == "divergence"
    fd = out.summary["first_divergence"]
    assert (fd["key"], fd["occurrence"], fd["component"]) == ("pix", MAX_OCCURRENCES // 2, 0)


def test_divergence_past_the_bound_is_never_called_parity(tmp_path):
    _loop_log(tmp_path / "c.log", "C", 3 * MAX_OCCURRENCES)
    _loop_log(tmp_path / "py.log", "PY", 3 * MAX_OCCURRENCES, bad_at=2 * MAX_OCCURRENCES)
    out = compare_logs(tmp_path / "c.log", tmp_path / "py.log")
    assert out.summary["verdict"] == "incomplete"
    assert out.summary["truncated"] == {"c": 2 * MAX_OCCURRENCES, "py": 2 * MAX_OCCURRENCES}


def test_fewer_occurrences_on_one_side_are_missing_rows_not_truncation_artefacts(tmp_path):
    _loop_log(tmp_path / "c.log", "C", 3 * MAX_OCCURRENCES)
    _loop_log(tmp_path / "py.log", "PY", MAX_OCCURRENCES - 10)
    out = compare_logs(tmp_path / "c.log", tmp_path / "py.log")
    statuses = [r.status for r in out.comparison.rows]
    assert statuses.count("missing_cand") == 2 * 10  # two components each
    assert out.summary["first_divergence"]["occurrence"] == MAX_OCCURRENCES - 10
    assert out.summary["truncated"] == {"c": 2 * MAX_OCCURRENCES, "py": 0}
