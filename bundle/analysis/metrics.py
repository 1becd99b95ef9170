"""Float images and the image metrics users judge parity by (nanobragg-facts.md §6).

Metrics, with r the reference image and c the candidate, sums accumulated in float64:

- total, mean, max and where (first maximum in memory order, nan pixels ignored), the value at
  the traced pixel;
- sum_ratio = total(c) / total(r) (IEEE: ±inf or nan when total(r) is 0);
- rmse = sqrt(mean((c - r)^2)); max_abs_diff = max |c - r| (nan when a pixel of either is nan);
- pearson = sum((r - mean r)(c - mean c)) / sqrt(sum((r - mean r)^2) sum((c - mean c)^2)), nan
  (without a warning) when either image is constant or holds nan/inf; correlation_pass when
  pearson >= CORRELATION_PASS (bundle.model.thresholds);
- bright peaks: a pixel is a peak when it is above mean + 5 std of its image's finite pixels and
  a local maximum of its 3x3 neighbourhood (strictly above the neighbours before it in memory
  order, at least equal to those after, so a flat top gives one peak); at most the 1000 brightest
  are kept. Peaks are matched greedily, nearest pair first, within 5 px; mean_peak_distance is the
  mean distance of the matched pairs; peak_distance_pass when it is <= PEAK_DISTANCE_PASS px. The
  pass is None when neither image has a peak and False when only one has, or none matched.

The pass thresholds are bundle.model.thresholds' (the one definition every writer words).
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from bundle.analysis.numbers import ratio
from bundle.model.errors import ImageError
from bundle.model.records import EngineImageStats, ImageMetrics
from bundle.model.thresholds import CORRELATION_PASS, PEAK_DISTANCE_PASS

PEAK_SIGMA = 5.0
PEAK_MAX_COUNT = 1000
PEAK_MATCH_RADIUS = 5.0
_BLOCK_ELEMENTS = 1 << 18  # float64 work arrays stay ~2 MB each


# --------------------------------------------------------------------------- files


def load_float_image(path: str | os.PathLike, slow: int, fast: int) -> np.ndarray:
    """Read a raw little-endian float32 image (fast index fastest, no header) as (slow, fast).

    Raises ImageError naming the file when it is missing, unreadable, or not exactly
    slow * fast * 4 bytes long.
    """
    name = os.fspath(path)
    if slow <= 0 or fast <= 0:
        raise ImageError(f"{name}: detector shape {slow} slow x {fast} fast is not positive")
    expected = slow * fast * 4
    try:
        st = os.stat(name)
    except OSError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{name}: not a regular file")
    if st.st_size != expected:
        raise ImageError(
            f"{name}: expected {expected} bytes (float32, {slow} slow x {fast} fast), found {st.st_size} bytes"
        )
    try:
        data = np.fromfile(name, dtype="<f4", count=slow * fast)
    except OSError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if data.size != slow * fast:
        raise ImageError(f"{name}: expected {expected} bytes, read {data.size * 4} bytes (file changed?)")
    return data.astype(np.float32, copy=False).reshape(slow, fast)


# --------------------------------------------------------------------------- metrics


def _row_blocks(*images: np.ndarray, spare: int = 0) -> Iterator[tuple[np.ndarray, ...]]:
    """Row blocks of the images as float64 (sums accumulate in float64, in bounded memory),
    plus ``spare`` scratch blocks of the same shape. The blocks are the generator's own buffers,
    reused from block to block (callers work in them in place): a fresh 8 MB array per block
    costs its page faults every time."""
    slow, fast = images[0].shape
    rows = min(slow, max(1, _BLOCK_ELEMENTS // max(fast, 1)))
    buffers = [np.empty((rows, fast), dtype=np.float64) for _ in range(len(images) + spare)]
    for start in range(0, slow, rows):
        n = min(rows, slow - start)
        blocks = tuple(b[:n] for b in buffers)
        for im, block in zip(images, blocks):
            np.copyto(block, im[start : start + n], casting="unsafe")
        yield blocks


def _max_where(img: np.ndarray, has_nan: bool = True) -> tuple[float, int, int]:
    """The largest non-nan value and its (slow, fast), first in memory order; nan at (0, 0).
    ``has_nan=False``: the caller knows there is none (a finite sum), and the check is skipped."""
    flat = img.reshape(-1)
    if has_nan and np.isnan(flat).any():
        if np.isnan(flat).all():
            return math.nan, 0, 0
        k = int(np.nanargmax(flat))
    else:
        k = int(np.argmax(flat))
    s, f = divmod(k, img.shape[1])
    return float(flat[k]), s, f


# The 3x3 neighbours before a pixel in memory order (it must be strictly above them) and after
# it (at least equal): a flat top gives one peak.
_BEFORE = ((-1, -1), (-1, 0), (-1, 1), (0, -1))
_AFTER = ((0, 1), (1, -1), (1, 0), (1, 1))


def find_peaks(img: np.ndarray, mean: float | None = None, std: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(slow, fast) coordinates of the bright peaks of ``img`` (rule in the module docstring).

    ``mean`` and ``std`` of the finite pixels may be passed when the caller has them already."""
    if mean is None or std is None:
        finite_mask = np.isfinite(img)
        finite = img if bool(finite_mask.all()) else img[finite_mask]
        if finite.size == 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        mean = float(np.mean(finite, dtype=np.float64))
        std = float(np.std(finite, dtype=np.float64))
    threshold = mean + PEAK_SIGMA * std
    slow, fast = img.shape
    flat = img.reshape(-1)
    # Candidates: above threshold (nan and -inf never are; +inf can be).
    flat_idx = np.flatnonzero(flat > threshold)
    if flat_idx.size == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    ys, xs = np.divmod(flat_idx, fast)
    v = flat[flat_idx]
    keep = np.ones(flat_idx.size, dtype=bool)
    # Only the candidates' neighbours are read (no padded copy of the image): outside the
    # image and nan count as -inf.
    for offsets, strict in ((_BEFORE, True), (_AFTER, False)):
        for dy, dx in offsets:
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < slow) & (nx >= 0) & (nx < fast)
            nv = img[np.clip(ny, 0, slow - 1), np.clip(nx, 0, fast - 1)]
            nv = np.where(inside & ~np.isnan(nv), nv, -np.inf)
            keep &= (v > nv) if strict else (v >= nv)
    ys, xs, v, flat_idx = ys[keep], xs[keep], v[keep], flat_idx[keep]
    if ys.size > PEAK_MAX_COUNT:
        order = np.lexsort((flat_idx, -v))[:PEAK_MAX_COUNT]  # brightest first, then memory order
        order.sort()
        ys, xs = ys[order], xs[order]
    return ys, xs


def match_peaks(
    ref: tuple[np.ndarray, np.ndarray], cand: tuple[np.ndarray, np.ndarray], radius: float = PEAK_MATCH_RADIUS
) -> list[float]:
    """Distances of greedily matched peak pairs: nearest pair first, each peak used once."""
    ry, rx = (np.asarray(a, dtype=np.float64) for a in ref)
    cy, cx = (np.asarray(a, dtype=np.float64) for a in cand)
    if ry.size == 0 or cy.size == 0:
        return []
    d = np.hypot(ry[:, None] - cy[None, :], rx[:, None] - cx[None, :])
    i, j = np.nonzero(d <= radius)
    dist = d[i, j]
    order = np.lexsort((j, i, dist))
    used_r = np.zeros(ry.size, dtype=bool)
    used_c = np.zeros(cy.size, dtype=bool)
    matched = []
    for k in order:
        a, b = i[k], j[k]
        if not used_r[a] and not used_c[b]:
            used_r[a] = used_c[b] = True
            matched.append(float(dist[k]))
    return matched


@dataclass(frozen=True, eq=False)
class ImageSummary:
    """One image's own numbers, everything image_metrics needs of it but the cross terms.

    Computed once per image, and on its own so that a capture can summarize the reference image
    while the candidate engine is still running."""

    shape: tuple[int, int]
    total: float  # float64 sum (nan/inf when a pixel is)
    centered_sq: float  # sum((x - mean)^2), float64
    max: float
    max_slow: int
    max_fast: int
    peaks: tuple[np.ndarray, np.ndarray]

    @property
    def mean(self) -> float:
        return self.total / (self.shape[0] * self.shape[1])


def summarize_image(img: np.ndarray) -> ImageSummary:
    """An image's sum, centred sum of squares (two passes, float64), maximum and bright peaks."""
    img = np.asarray(img)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"image must be 2-D and non-empty, got shape {img.shape}")
    n = img.size
    with np.errstate(all="ignore"):  # inf - inf, overflow: the nan/inf result is the finding
        total = float(img.sum(dtype=np.float64))  # numpy casts in small buffers: no copy
        mean = total / n
        centered_sq = 0.0
        for (b,) in _row_blocks(img):
            b -= mean
            flat = b.reshape(-1)
            centered_sq += float(np.dot(flat, flat))
    # A finite float64 sum of float32 pixels means every pixel is finite (a float32 sum cannot
    # overflow a double), so the peaks' mean and std are the ones just computed.
    if math.isfinite(total) and math.isfinite(centered_sq):
        peaks = find_peaks(img, mean, math.sqrt(centered_sq / n))
    else:
        peaks = find_peaks(img)
    mx, ms, mf = _max_where(img, has_nan=not math.isfinite(total))
    return ImageSummary(shape=(int(img.shape[0]), int(img.shape[1])), total=total,
                        centered_sq=centered_sq, max=mx, max_slow=ms, max_fast=mf, peaks=peaks)


def image_metrics(
    ref: np.ndarray,
    cand: np.ndarray,
    ref_engine: str = "c",
    cand_engine: str = "py",
    pixel: tuple[int, int] | None = None,
    ref_summary: ImageSummary | None = None,
    cand_summary: ImageSummary | None = None,
) -> ImageMetrics:
    """Compare two images of the same (slow, fast) shape (formulas in the module docstring).

    ``pixel`` is the traced (slow, fast); its value is reported per engine (None when no pixel
    was traced or it lies outside the image). Summaries already computed (summarize_image) may
    be passed; only the cross terms are then computed here, in one pass.
    """
    ref = np.asarray(ref)
    cand = np.asarray(cand)
    if ref.ndim != 2 or ref.shape != cand.shape or ref.size == 0:
        raise ValueError(f"images must be 2-D, non-empty and of one shape, got {ref.shape} and {cand.shape}")
    sr = ref_summary if ref_summary is not None else summarize_image(ref)
    sc = cand_summary if cand_summary is not None else summarize_image(cand)
    if sr.shape != ref.shape or sc.shape != cand.shape:
        raise ValueError("image summaries do not match the images' shapes")
    slow, fast = ref.shape
    sse, src, max_abs = _cross_terms(ref, cand, sr.mean, sc.mean)
    pearson = _pearson(sr.centered_sq, sc.centered_sq, src)
    matched = match_peaks(sr.peaks, sc.peaks)
    n_r, n_c = int(sr.peaks[0].size), int(sc.peaks[0].size)
    mean_dist = float(np.mean(matched)) if matched else None
    return ImageMetrics(
        ref_engine=ref_engine,
        cand_engine=cand_engine,
        slow=slow,
        fast=fast,
        ref=_engine_stats(ref_engine, ref, sr, pixel),
        cand=_engine_stats(cand_engine, cand, sc, pixel),
        sum_ratio=ratio(sc.total, sr.total),
        rmse=math.sqrt(sse / ref.size),
        pearson=pearson,
        peaks_ref=n_r,
        peaks_cand=n_c,
        peaks_matched=len(matched),
        mean_peak_distance=mean_dist,
        correlation_pass=bool(pearson >= CORRELATION_PASS),
        peak_distance_pass=_peak_distance_pass(n_r, n_c, mean_dist),
        max_abs_diff=max_abs,
    )


def _cross_terms(ref: np.ndarray, cand: np.ndarray, mean_r: float, mean_c: float
                 ) -> tuple[float, float, float]:
    """(sum((c - r)^2), sum((r - mean r)(c - mean c)), max |c - r|) in one blocked float64
    pass (np.max propagates nan, so a nan pixel makes the max nan: the finding, not hidden)."""
    sse = src = max_abs = 0.0
    with np.errstate(all="ignore"):
        for r, c, d in _row_blocks(ref, cand, spare=1):
            np.subtract(c, r, out=d)
            flat = d.reshape(-1)
            sse += float(np.dot(flat, flat))
            block_max = float(np.max(np.abs(flat)))
            max_abs = (math.nan if math.isnan(max_abs) or math.isnan(block_max)
                       else max(max_abs, block_max))
            r -= mean_r
            c -= mean_c
            src += float(np.dot(r.reshape(-1), c.reshape(-1)))
    return sse, src, max_abs


def _pearson(srr: float, scc: float, src: float) -> float:
    """The correlation from the centred sums; nan when an image is constant or not finite."""
    if not (srr > 0 and scc > 0 and math.isfinite(srr) and math.isfinite(scc) and math.isfinite(src)):
        return math.nan
    denom = srr * scc  # one sqrt of the product keeps pearson(a, a) exactly 1
    if math.isfinite(denom) and denom > 0:
        pearson = src / math.sqrt(denom)
    else:  # the product over- or underflows
        pearson = src / math.sqrt(srr) / math.sqrt(scc)
    return max(-1.0, min(1.0, pearson))


def _engine_stats(engine: str, img: np.ndarray, s: ImageSummary,
                  pixel: tuple[int, int] | None) -> EngineImageStats:
    slow, fast = img.shape
    traced = None
    if pixel is not None and 0 <= pixel[0] < slow and 0 <= pixel[1] < fast:
        traced = float(img[pixel[0], pixel[1]])
    return EngineImageStats(
        engine=engine, total=s.total, mean=s.total / img.size, max=s.max, max_slow=s.max_slow,
        max_fast=s.max_fast, traced_value=traced,
    )


def _peak_distance_pass(n_ref: int, n_cand: int, mean_dist: float | None) -> bool | None:
    if n_ref == 0 and n_cand == 0:
        return None
    return mean_dist is not None and mean_dist <= PEAK_DISTANCE_PASS
