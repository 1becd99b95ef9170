"""How fast, and in how much memory, does `nb-evidence compare` read large logs?

Writes logs into a temporary directory and runs `nb-evidence compare REF CAND --json` as a child
process, reading its peak RSS from wait4 (ru_maxrss) and its wall time. Throughput is the two
logs' bytes over the wall (MB = 1e6 bytes). Three kinds of log pair:

- shipped: the golden minibragg-roi trace (about 40 key lines and its banners), as shipped, also
  timed in process (compare_logs, without the CLI's start);
- free:    SIZE of progress lines and banners around the same 40 key lines;
- repeated: SIZE of key lines, the 40 keys printed over and over (a trace inside a pixel loop).

Asserts nothing (goals: two 1 GB logs in <= 300 MB peak RSS at >= 30 MB/s).

    .venv/bin/python bench/compare_bench.py [--size-mb 1000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "minibragg-roi" / "traces.parquet.json"
CLI = Path(sys.executable).parent / "nb-evidence"


def shipped_lines(engine: str) -> list[tuple[int, str]]:
    """(line number, key line) for one engine of the golden trace."""
    rows = json.loads(GOLDEN.read_text())["rows"]
    lines: dict[int, tuple[int, str, list[str]]] = {}
    for r in rows:
        if r["engine"] == engine:
            lines.setdefault(r["position"], (r["line_no"], f"{r['prefix']} {r['key']}", []))[2].append(r["token"])
    return [(no, head + " " + " ".join(toks)) for no, head, toks in (lines[p] for p in sorted(lines))]


def write_shipped(path: Path, engine: str) -> None:
    out, n = [], 1
    for no, line in shipped_lines(engine):
        while n < no:
            out.append(f"banner line {n}: minibragg settings, detector, beam")
            n += 1
        out.append(line)
        n += 1
    path.write_text("\n".join(out) + "\n")


def write_large(path: Path, engine: str, size: int, kind: str, blocks: int | None = None) -> int:
    """About ``size`` bytes (or ``blocks`` blocks): the 40 key lines once amid progress lines, or
    printed again and again. Returns the number of blocks written, so the other side can match."""
    keys = [line for _, line in shipped_lines(engine)]
    if kind == "free":
        block = "".join(f"{k % 100}% done, pixel {k} of 6224001, still rendering\n" for k in range(2000))
        head = "minibragg v1 banner\n" + "\n".join(keys[:20]) + "\n"
        tail = "\n".join(keys[20:]) + "\n"
    else:
        block = "\n".join(keys) + "\n"
        head = tail = ""
    with open(path, "w") as f:
        f.write(head)
        if blocks is None:
            blocks = max(1, (size - len(head) - len(tail)) // len(block))
        per_chunk = max(1, (8 << 20) // len(block))
        for start in range(0, blocks, per_chunk):
            f.write(block * min(per_chunk, blocks - start))
        f.write(tail)
    return blocks


def run_compare(ref: Path, cand: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in bytes, exit status) of one `nb-evidence compare` child."""
    t = time.perf_counter()
    proc = subprocess.Popen([str(CLI), "compare", str(ref), str(cand), "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode


def report(label: str, ref: Path, cand: Path, repeat: int) -> None:
    size = ref.stat().st_size + cand.stat().st_size
    runs = [run_compare(ref, cand) for _ in range(repeat)]
    walls = [w for w, _, _ in runs]
    rss = max(r for _, r, _ in runs)
    print(f"{label}: two logs, {size / 1e6:.3f} MB; exit {runs[0][2]}; wall best {min(walls):.2f} s, "
          f"median {statistics.median(walls):.2f} s = {size / 1e6 / statistics.median(walls):.1f} MB/s; "
          f"peak RSS {rss / 2**20:.0f} MiB ({repeat} runs)", flush=True)


def in_process(ref: Path, cand: Path, repeat: int = 200) -> None:
    """The shipped-size compare without the CLI's start: compare_logs, best and median."""
    sys.path.insert(0, str(ROOT))
    from bundle.analysis.offline import compare_logs

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        compare_logs(ref, cand)
        times.append(time.perf_counter() - t)
    print(f"shipped, in process (compare_logs): best {min(times) * 1e3:.2f} ms, "
          f"median {statistics.median(times) * 1e3:.2f} ms ({repeat} runs)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1000.0, help="size of each large log (MB)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the shipped-size compare")
    ap.add_argument("--keep", type=Path, help="write the logs under this directory and keep them")
    args = ap.parse_args()
    tmp = None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        root = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="compare-bench-")
        root = Path(tmp.name)
    try:
        write_shipped(root / "shipped-c.log", "c")
        write_shipped(root / "shipped-py.log", "py")
        report("shipped", root / "shipped-c.log", root / "shipped-py.log", args.repeat)
        in_process(root / "shipped-c.log", root / "shipped-py.log")
        size = int(args.size_mb * 1e6)
        for kind in ("free", "repeated"):
            ref, cand = root / f"{kind}-c.log", root / f"{kind}-py.log"
            t = time.perf_counter()
            write_large(cand, "py", size, kind, write_large(ref, "c", size, kind))
            print(f"   ({kind} logs written in {time.perf_counter() - t:.1f} s)", flush=True)
            report(kind, ref, cand, 1)
            ref.unlink()
            cand.unlink()
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
