"""The HKL list put on a dense grid, so the engine can look F up by index arithmetic.

F(h0, k0, l0) is the listed value when (h0, k0, l0) is listed, else default_F (outside the
list's min..max box, or inside it but not listed: the contract treats both alike). So the
grid may be padded with default_F far beyond the listed box without changing any lookup; when
the padding reaches every index a pixel can produce, the engine needs no range mask at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .readers import HklList

# Largest padded grid we are willing to build (entries); beyond it the engine masks instead.
# 2**22 float64 entries = 32 MiB, and every flat index stays exact in float32 (< 2**24).
MAX_PADDED_ENTRIES = 1 << 22


@dataclass(frozen=True)
class HklGrid:
    """F on the box lo..lo+shape-1 (inclusive lower corner), flattened C-order (l fastest)."""

    lo: tuple[int, int, int]
    shape: tuple[int, int, int]
    values: np.ndarray  # float64, size shape[0]*shape[1]*shape[2]
    default_F: float
    covers_reach: bool  # True: every index within `reach` is inside the box (no mask needed)

    @property
    def hi(self) -> tuple[int, int, int]:
        return tuple(lo + n - 1 for lo, n in zip(self.lo, self.shape))  # type: ignore[return-value]


def index_reach(cell_lengths_m: tuple[float, float, float], lambda_m: float) -> tuple[int, int, int]:
    """A bound on |h0|, |k0|, |l0| for any pixel: |h| = |a·q| <= |a|·|q| and |q| = |d - i|/λ <= 2/λ;
    rounding adds at most 0.5; one more for float32 rounding of h itself."""
    return tuple(int(math.floor(length * 2.0 / lambda_m + 0.5)) + 1 for length in cell_lengths_m)  # type: ignore[return-value]


def build_grid(hkl: HklList, default_F: float, reach: tuple[int, int, int],
               max_entries: int = MAX_PADDED_ENTRIES) -> HklGrid:
    """The listed reflections on a grid, padded to +-reach when that stays under max_entries."""
    listed_lo = (int(hkl.h.min()), int(hkl.k.min()), int(hkl.l.min()))
    listed_hi = (int(hkl.h.max()), int(hkl.k.max()), int(hkl.l.max()))
    padded_lo = tuple(min(lo, -r) for lo, r in zip(listed_lo, reach))
    padded_hi = tuple(max(hi, r) for hi, r in zip(listed_hi, reach))
    padded_shape = tuple(hi - lo + 1 for lo, hi in zip(padded_lo, padded_hi))
    covers = math.prod(padded_shape) <= max_entries
    lo = padded_lo if covers else listed_lo
    shape = padded_shape if covers else tuple(hi - lo_ + 1 for lo_, hi in zip(listed_lo, listed_hi))
    values = np.full(math.prod(shape), default_F, dtype=np.float64)
    flat = np.ravel_multi_index((hkl.h - lo[0], hkl.k - lo[1], hkl.l - lo[2]), shape)
    # A later duplicate wins (as filling a C array in file order). NumPy does not promise an
    # order for repeated fancy-index writes, so keep only each index's last occurrence.
    _, first_from_end = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - first_from_end
    values[flat[keep]] = hkl.F[keep]
    return HklGrid(lo=lo, shape=shape, values=values, default_F=default_F,  # type: ignore[arg-type]
                   covers_reach=covers)
