"""How fast does `verify` check a full-size bundle?

Builds a bundle in a temporary directory with two full-detector float32 images
(2527 x 2463 x 4 B = 24.9 MB each) plus parquet-, plot- and log-sized files, about 200 MB in all,
then times verify_bundle and prints MB/s (MB = 1e6 bytes). Asserts nothing.

    .venv/bin/python bench/verify_bench.py [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

import bundle.store.verify as verify_mod  # noqa: E402
from bundle.store.verify import file_sha256, verify_bundle  # noqa: E402
from bundle_factory import make_bundle, refresh_files  # noqa: E402

SLOW, FAST = 2527, 2463
# bundle-relative path -> size in bytes (besides the two images)
OTHER = {
    "traces.parquet": 30_000_000,
    "comparison.parquet": 55_000_000,
    "chain.parquet": 1_000_000,
    "metrics.parquet": 200_000,
    "commands.parquet": 100_000,
    "plots/image_c.png": 20_000_000,
    "plots/image_py.png": 20_000_000,
    "plots/diff.png": 20_000_000,
    "logs/run-py.stderr": 2_000_000,
    "ro-crate-metadata.json": 50_000,
}


def write_random(path: Path, size: int, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n


def build(root: Path) -> Path:
    rng = np.random.default_rng(1)
    b = make_bundle(root, images=False)
    (b / "images").mkdir()
    for name in ("c", "py"):
        img = rng.gamma(0.5, 10.0, size=(SLOW, FAST)).astype("<f4")
        img.tofile(b / "images" / f"{name}.bin")
    for rel, size in OTHER.items():
        write_random(b / rel, size, rng)
    refresh_files(b)
    return b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the bundle under this directory and keep it")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(dir=args.keep))
    else:
        tmp = tempfile.TemporaryDirectory(prefix="verify-bench-")
        root = Path(tmp.name)
    t0 = time.perf_counter()
    b = build(root)
    total = sum(p.stat().st_size for p in b.rglob("*") if p.is_file())
    print(f"bundle: {b} ({total / 1e6:.1f} MB in {sum(1 for p in b.rglob('*') if p.is_file())} files, "
          f"built in {time.perf_counter() - t0:.1f} s); cpus: {os.cpu_count()}")

    default_threads = verify_mod._MAX_THREADS
    for threads, label in ((default_threads, "verify_bundle"), (1, "verify_bundle, 1 thread")):
        verify_mod._MAX_THREADS = threads
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = verify_bundle(b)
            times.append(time.perf_counter() - t)
        print(f"{label}: intact={r.intact}, {r.bytes_hashed / 1e6:.1f} MB hashed; "
              f"best {min(times):.3f} s = {r.bytes_hashed / 1e6 / min(times):.0f} MB/s, "
              f"median {statistics.median(times):.3f} s = {r.bytes_hashed / 1e6 / statistics.median(times):.0f} MB/s "
              f"(page cache warm, {args.repeat} runs)")
    verify_mod._MAX_THREADS = default_threads

    img = b / "images" / "c.bin"
    size = img.stat().st_size
    t = time.perf_counter()
    file_sha256(img)
    one = time.perf_counter() - t
    data = img.read_bytes()
    t = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    raw = time.perf_counter() - t
    print(f"one image, one thread: file_sha256 {size / 1e6 / one:.0f} MB/s; "
          f"hashlib.sha256 on bytes in memory {size / 1e6 / raw:.0f} MB/s (the ceiling per thread)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
