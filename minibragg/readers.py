"""The two input files: the MOSFLM A matrix and the `h k l F` list.

Errors name the file (and the line, for the HKL list), as the contract asks. Readers return
plain data; nothing here knows about torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import MinibraggError
from .numbers import FLOAT_PATTERN, INT_PATTERN, parse_float, parse_int

Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

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
    return HklList(
        h=np.asarray(hs, dtype=np.int64),
        k=np.asarray(ks, dtype=np.int64),
        l=np.asarray(ls, dtype=np.int64),
        F=np.asarray(fs, dtype=np.float64),
    )


def _diagnose_hkl_line(path: str, lineno: int, stripped: str) -> None:
    """Raise the most specific message for a line the fast pattern refused."""
    fields = stripped.split()
    if len(fields) != 4:
        raise MinibraggError(f"{path}:{lineno}: expected 4 fields 'h k l F', found {len(fields)}")
    for name, text in zip("hkl", fields[:3]):
        if parse_int(text) is None:
            raise MinibraggError(f"{path}:{lineno}: index {name} '{text}' is not an integer")
    raise MinibraggError(f"{path}:{lineno}: F '{fields[3]}' is not a number")
