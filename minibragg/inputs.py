"""`python -m minibragg.inputs --out DIR`: the supervisor command's input files.

Writes DIR/A.mat (the matrix of nanobragg-facts §2, same text) and DIR/scaled.hkl: a P1 list
`h k l F` holding every reflection of the box of indices the supervisor detector reaches over
its φ steps (plus a margin), with F drawn from a seeded hash of (h, k, l) so that two runs, on
any machine or numpy version, write byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .config import parse_args
from .crystal import cell_from_reciprocal, phi_angles, reciprocal_from_matrix, rotated_cells
from .geometry import detector_frame
from .readers import read_matrix
from .supervisor import A_MATRIX_TEXT, supervisor_args

SEED = 20240601
MARGIN = 2  # indices beyond the sampled reach: covers the pixels between samples, and rounding
SAMPLE_STRIDE = 8  # pixels between sampled rows/columns (h moves < 0.1 per pixel here)


def reach(args: list[str], matrix_path: str, stride: int = SAMPLE_STRIDE) -> tuple[int, int, int]:
    """max |h0|, |k0|, |l0| over the detector (every `stride`-th pixel and the edges) and every
    φ step of the command `args`, computed in float64 with numpy. The whole area is sampled,
    not only the edges: h = a·q can peak inside the detector (where q is parallel to a)."""
    config = parse_args(args)
    det = detector_frame(config)
    cell = cell_from_reciprocal(*reciprocal_from_matrix(read_matrix(matrix_path), config.lambda_A))
    cells = rotated_cells(cell, config.spindle, phi_angles(config))
    fast = np.unique(np.r_[np.arange(0, det.fpixels, stride), det.fpixels - 1]) + 0.5
    slow = np.unique(np.r_[np.arange(0, det.spixels, stride), det.spixels - 1]) + 0.5
    F, S = np.meshgrid(fast * det.pixel, slow * det.pixel)
    pos = np.stack([det.pix0[c] + F * det.fdet[c] + S * det.sdet[c] for c in range(3)])
    d = pos / np.sqrt((pos * pos).sum(axis=0))
    q = (d - np.asarray(det.beam).reshape(3, 1, 1)) / (config.lambda_A * 1e-10)
    best = [0, 0, 0]
    for c in cells:
        for i, vec in enumerate((c.a, c.b, c.c)):
            frac = np.tensordot(np.asarray(vec) * 1e-10, q, axes=1)
            best[i] = max(best[i], int(np.abs(np.ceil(frac - 0.5)).max()))
    return best[0], best[1], best[2]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed integer hash (uint64, wrapping): the same bits everywhere, unlike RNG streams."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hkl_text(limits: tuple[int, int, int], seed: int = SEED) -> str:
    """Every (h, k, l) with |h| <= limits[0] etc., h slowest, and F in 1.00..999.99."""
    hmax, kmax, lmax = limits
    h, k, l = np.meshgrid(np.arange(-hmax, hmax + 1), np.arange(-kmax, kmax + 1),
                          np.arange(-lmax, lmax + 1), indexing="ij")
    h, k, l = h.ravel(), k.ravel(), l.ravel()
    key = (((h + 1024).astype(np.uint64) << np.uint64(42)) | ((k + 1024).astype(np.uint64) << np.uint64(21))
           | (l + 1024).astype(np.uint64)) ^ np.uint64(seed)
    cents = 100 + (_splitmix64(key) % np.uint64(99900)).astype(np.int64)  # F·100
    lines = [f"{a} {b} {c} {f // 100}.{f % 100:02d}\n"
             for a, b, c, f in zip(h.tolist(), k.tolist(), l.tolist(), cents.tolist())]
    return "".join(lines)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii", newline="\n") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_inputs(out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    mat = os.path.join(out_dir, "A.mat")
    hkl = os.path.join(out_dir, "scaled.hkl")
    _write(mat, A_MATRIX_TEXT)
    limits = reach(supervisor_args(mat=mat), mat)
    _write(hkl, hkl_text(tuple(n + MARGIN for n in limits)))  # type: ignore[arg-type]
    return mat, hkl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibragg.inputs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write A.mat and scaled.hkl into")
    args = parser.parse_args(argv)
    mat, hkl = write_inputs(args.out)
    print(f"wrote {mat}")
    print(f"wrote {hkl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
