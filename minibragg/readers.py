"""The two input files: the MOSFLM A matrix and the `h k l F` list.

Errors name the file (and the line, for the HKL list), as the contract asks. Readers return
plain data; nothing here knows about torch.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import MinibraggError
from .numbers import FLOAT_PATTERN, INT_PATTERN, parse_float, parse_int

Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

# Larger boxes of indices are refused (as the C engine does): the grid would not fit in memory.
MAX_HKL_GRID = 1 << 28

_HKL_DTYPE = np.dtype([("h", np.int64), ("k", np.int64), ("l", np.int64), ("F", np.float64)])

# One well-formed HKL line; anything else is diagnosed field by field (slow path, errors only).
_HKL_LINE = re.compile(
    rf"\s*({INT_PATTERN})\s+({INT_PATTERN})\s+({INT_PATTERN})\s+({FLOAT_PATTERN})\s*")


@dataclass(frozen=True)
class HklList:
    """The reflections as listed: integer indices and F, in file order (a later duplicate wins
    when the list is put on a grid, as filling a C array in file order would)."""

    h: np.ndarray
    k: np.ndarray
    l: np.ndarray
    F: np.ndarray


def _read_text(path: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        raise MinibraggError(f"{flag} {path}: cannot read ({exc.strerror or exc})") from None


def read_matrix(path: str) -> Matrix:
    """The 9 numbers of a MOSFLM A matrix file, as 3 rows of 3 (row i = component i of a*, b*, c*)."""
    tokens = _read_text(path, "-mat").split()
    numbers = []
    for token in tokens:
        value = parse_float(token)
        if value is None:
            raise MinibraggError(f"-mat {path}: '{token}' is not a number")
        numbers.append(value)
    if len(numbers) != 9:
        raise MinibraggError(f"-mat {path}: expected exactly 9 numbers, found {len(numbers)}")
    n = numbers
    return ((n[0], n[1], n[2]), (n[3], n[4], n[5]), (n[6], n[7], n[8]))


def read_hkl(path: str) -> HklList:
    """Lines `h k l F`; blank lines and lines starting with '#' are skipped."""
    text = _read_text(path, "-hkl")
    listed = _parse_hkl_fast(text)
    if listed is None:
        listed = _parse_hkl_lines(path, text)
    _check_box(path, listed)
    return listed


def _parse_hkl_fast(text: str) -> HklList | None:
    """numpy's C parser, ten times quicker on big lists; None sends the text to the line-by-line
    parser, which accepts the same files and names the line of any error. Taken only when
    nothing can differ: ASCII, no '#' (loadtxt would cut comments anywhere in a line), no '_'
    (digit separators), and finite F."""
    if not text.isascii() or "#" in text or "_" in text:
        return None
    if not text.strip():
        return _hkl_list([], [], [], [])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(io.StringIO(text), dtype=_HKL_DTYPE, comments=None, ndmin=1)
    except ValueError:
        return None
    if not np.isfinite(table["F"]).all():
        return None
    return HklList(h=table["h"].copy(), k=table["k"].copy(), l=table["l"].copy(), F=table["F"].copy())


def _parse_hkl_lines(path: str, text: str) -> HklList:
    hs: list[int] = []
    ks: list[int] = []
    ls: list[int] = []
    fs: list[float] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _HKL_LINE.fullmatch(line)
        if match is None:
            _diagnose_hkl_line(path, lineno, stripped)
        F = float(match.group(4))
        if F != F or F in (float("inf"), float("-inf")):
            raise MinibraggError(f"{path}:{lineno}: F '{match.group(4)}' is not a finite number")
        hs.append(int(match.group(1)))
        ks.append(int(match.group(2)))
        ls.append(int(match.group(3)))
        fs.append(F)
    return _hkl_list(hs, ks, ls, fs)


def _hkl_list(hs: list[int], ks: list[int], ls: list[int], fs: list[float]) -> HklList:
    return HklList(h=np.asarray(hs, dtype=np.int64), k=np.asarray(ks, dtype=np.int64),
                   l=np.asarray(ls, dtype=np.int64), F=np.asarray(fs, dtype=np.float64))


def _check_box(path: str, listed: HklList) -> None:
    if len(listed.F) == 0:
        return
    spans = [int(v.max()) - int(v.min()) + 1 for v in (listed.h, listed.k, listed.l)]
    if spans[0] * spans[1] * spans[2] > MAX_HKL_GRID:
        ranges = " ".join(f"{n} {int(v.min())}..{int(v.max())}"
                          for n, v in zip("hkl", (listed.h, listed.k, listed.l)))
        raise MinibraggError(f"-hkl {path}: index range {ranges} is too large")


def _diagnose_hkl_line(path: str, lineno: int, stripped: str) -> None:
    """Raise the most specific message for a line the fast pattern refused."""
    fields = stripped.split()
    if len(fields) != 4:
        raise MinibraggError(f"{path}:{lineno}: expected 4 fields 'h k l F', found {len(fields)}")
    for name, text in zip("hkl", fields[:3]):
        if parse_int(text) is None:
            raise MinibraggError(f"{path}:{lineno}: index {name} '{text}' is not an integer")
    raise MinibraggError(f"{path}:{lineno}: F '{fields[3]}' is not a number")
