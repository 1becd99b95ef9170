"""Float images and image metrics: loading, detector shape, correlation, sums, peaks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundle.model.errors import ImageError
from bundle.analysis.metrics import find_peaks, image_metrics, load_float_image, summarize_image
from bundle.capture.plan import detector_shape

SUPERVISOR_ARGS = (
    "-mat A.mat -floatfile img.bin -hkl scaled.hkl -nonoise -nointerpolate -oversample 1 -exposure 1 "
    "-flux 1e18 -beamsize 1.0 -spindle_axis -1 0 0 -Xbeam 217.742295 -Ybeam 213.907080 -distance 231.274660 "
    "-lambda 0.976800 -pixel 0.172 -detpixels_x 2463 -detpixels_y 2527 "
    "-odet_vector -0.000088 0.004914 -0.999988 -sdet_vector -0.005998 -0.999970 -0.004913 "
    "-fdet_vector 0.999982 -0.005998 -0.000118 -pix0_vector_mm -216.336293 215.205512 -230.200866 "
    "-beam_vector 0.00051387949 0.0 -0.99999986 -Na 36 -Nb 47 -Nc 29 -osc 0.1 -phi 0 -phisteps 10 "
    "-detector_rotx 0 -detector_roty 0 -detector_rotz 0 -twotheta 0"
).split()


def spots(shape, points, value=1000.0, background=None, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, shape).astype(np.float32) if background is None else np.full(shape, background, np.float32)
    for y, x in points:
        img[y, x] = value
    return img


POINTS = [(10, 10), (10, 40), (30, 25), (50, 50), (55, 12)]


# --------------------------------------------------------------------------- files and shapes


def test_load_round_trip(tmp_path):
    img = np.arange(12, dtype=np.float32).reshape(3, 4) * 1.5
    path = tmp_path / "c.bin"
    img.astype("<f4").tofile(path)
    out = load_float_image(path, 3, 4)
    assert out.shape == (3, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, img)
    assert out[1, 0] == img.reshape(-1)[4]  # fast index varies fastest


def test_wrong_size_names_file_and_byte_counts(tmp_path):
    path = tmp_path / "py.bin"
    np.zeros(11, "<f4").tofile(path)
    with pytest.raises(ImageError) as info:
        load_float_image(path, 3, 4)
    msg = str(info.value)
    assert str(path) in msg and "48" in msg and "44" in msg
    assert "\n" not in msg


def test_missing_image_names_file(tmp_path):
    with pytest.raises(ImageError, match="absent.bin"):
        load_float_image(tmp_path / "absent.bin", 2, 2)
    with pytest.raises(ImageError, match=str(tmp_path)):
        load_float_image(tmp_path, 2, 2)


@pytest.mark.parametrize(
    "args, shape",
    [
        ([], (1024, 1024)),
        (SUPERVISOR_ARGS, (2527, 2463)),
        (["-detpixels", "100"], (100, 100)),
        (["-detpixels", "100", "-detpixels_x", "20"], (100, 20)),
        (["-detpixels_y", "7", "-detpixels", "9"], (9, 9)),
        (["-detpixels_x", "5", "-detpixels_x", "6", "-detpixels_y", "3"], (3, 6)),
        (["-detpixels_f", "5", "-detpixels_s", "3"], (3, 5)),
        (["-detpixels_x", "300"], (1024, 300)),
        (["-detsize", "100", "-pixel", "0.1"], (1000, 1000)),
        (["-detsize", "102.4"], (1024, 1024)),
        (["-pixel", "0.172", "-detpixels", "50"], (50, 50)),
        (["-pixel", "0.172"], None),  # nanoBragg: 595; minibragg: 1024
        (["-detpixels", "abc"], None),
        (["-detpixels", "0"], None),
        (["-detpixels"], (1024, 1024)),  # no value: ignored, as nanoBragg does
    ],
)
def test_detector_shape(args, shape):
    assert detector_shape(args) == shape


# --------------------------------------------------------------------------- metrics


def test_identical_images():
    img = spots((64, 64), POINTS)
    m = image_metrics(img, img.copy(), pixel=(30, 25))
    assert m.pearson == 1.0 and m.sum_ratio == 1.0 and m.rmse == 0.0 and m.max_abs_diff == 0.0
    assert m.correlation_pass and m.peak_distance_pass is True
    assert m.peaks_ref == m.peaks_cand == m.peaks_matched == len(POINTS)
    assert m.mean_peak_distance == 0.0
    assert m.ref.traced_value == m.cand.traced_value == 1000.0
    assert (m.ref.max, m.ref.max_slow, m.ref.max_fast) == (1000.0, 10, 10)  # first maximum in memory order
    assert (m.slow, m.fast) == (64, 64)
    assert m.ref.total == pytest.approx(float(img.astype(np.float64).sum()))


def test_max_abs_diff_is_the_largest_pixel_difference():
    ref = spots((64, 64), POINTS)
    cand = ref.copy()
    cand[40, 7] -= 2.5  # the largest |c - r|, negative on purpose
    cand[3, 3] += 1.0
    assert image_metrics(ref, cand).max_abs_diff == pytest.approx(2.5, abs=1e-6)  # float32 pixels
    cand[5, 5] = np.nan
    assert math.isnan(image_metrics(ref, cand).max_abs_diff)


@pytest.mark.parametrize("dy, dx, distance", [(0, 1, 1.0), (1, 1, math.sqrt(2)), (0, 2, 2.0), (3, 4, 5.0)])
def test_shifted_peaks_are_measured(dy, dx, distance):
    ref = spots((64, 64), POINTS, background=0.0)
    cand = spots((64, 64), [(y + dy, x + dx) for y, x in POINTS], background=0.0)
    m = image_metrics(ref, cand)
    assert m.peaks_matched == len(POINTS)
    assert m.mean_peak_distance == pytest.approx(distance)
    assert m.peak_distance_pass is (distance <= 1.0)
    assert m.sum_ratio == 1.0
    assert m.pearson < 0.999 and not m.correlation_pass


def test_peaks_beyond_the_radius_do_not_match():
    ref = spots((64, 64), [(10, 10)], background=0.0)
    cand = spots((64, 64), [(10, 20)], background=0.0)
    m = image_metrics(ref, cand)
    assert (m.peaks_ref, m.peaks_cand, m.peaks_matched) == (1, 1, 0)
    assert m.mean_peak_distance is None and m.peak_distance_pass is False


def test_greedy_matching_takes_the_nearest_pair_first():
    ref = spots((40, 40), [(10, 10), (10, 13)], background=0.0)
    cand = spots((40, 40), [(10, 12)], background=0.0)
    m = image_metrics(ref, cand)
    assert m.peaks_matched == 1 and m.mean_peak_distance == 1.0


def test_flat_topped_peak_counts_once():
    img = np.zeros((20, 20), np.float32)
    img[5, 5:7] = 9.0
    img[6, 5:7] = 9.0
    ys, xs = find_peaks(img)
    assert list(zip(ys.tolist(), xs.tolist())) == [(5, 5)]


def test_scaled_candidate():
    ref = spots((64, 64), POINTS)
    m = image_metrics(ref, ref * 124538.0)
    assert m.sum_ratio == pytest.approx(124538.0, rel=1e-6)
    assert m.pearson == pytest.approx(1.0, abs=1e-12)
    assert m.mean_peak_distance == 0.0 and m.peaks_matched == len(POINTS)


def test_constant_and_degenerate_images_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zero = np.zeros((16, 16), np.float32)
        m = image_metrics(zero, np.ones((16, 16), np.float32))
        assert math.isnan(m.pearson) and not m.correlation_pass
        assert m.sum_ratio == math.inf
        assert m.peaks_ref == m.peaks_cand == 0 and m.peak_distance_pass is None
        assert m.mean_peak_distance is None
        z = image_metrics(zero, zero)
        assert math.isnan(z.sum_ratio) and z.rmse == 0.0
        img = spots((16, 16), [(3, 3)])
        img[0, 0] = np.nan
        n = image_metrics(img, img)
        assert math.isnan(n.pearson) and math.isnan(n.ref.total)
        assert (n.ref.max, n.ref.max_slow, n.ref.max_fast) == (1000.0, 3, 3)
        assert n.peaks_ref == 1 and n.peak_distance_pass is True
        inf = spots((16, 16), [(3, 3)])
        inf[2, 2] = np.inf
        i = image_metrics(inf, inf * np.float32(2))
        assert math.isnan(i.pearson) and i.ref.max == math.inf and math.isnan(i.rmse)
        allnan = np.full((4, 4), np.nan, np.float32)
        a = image_metrics(allnan, allnan)
        assert math.isnan(a.ref.max) and a.peaks_ref == 0


def test_traced_pixel_outside_the_image_is_none_and_shapes_must_agree():
    img = spots((8, 8), [(1, 1)])
    assert image_metrics(img, img, pixel=(8, 0)).ref.traced_value is None
    assert image_metrics(img, img).ref.traced_value is None
    with pytest.raises(ValueError):
        image_metrics(img, img[:4])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(4, 40), st.integers(4, 40))
def test_metrics_properties(seed, slow, fast):
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0, (slow, fast)).astype(np.float32)
    b = (a + rng.normal(0, 0.5, (slow, fast))).astype(np.float32)
    m, back = image_metrics(a, b), image_metrics(b, a, "py", "c")
    assert -1.0 <= m.pearson <= 1.0
    assert m.pearson == pytest.approx(back.pearson, abs=1e-12)
    assert m.rmse == pytest.approx(back.rmse, rel=1e-12)
    assert m.sum_ratio == pytest.approx(1 / back.sum_ratio, rel=1e-12)
    assert (m.peaks_ref, m.peaks_cand, m.peaks_matched) == (back.peaks_cand, back.peaks_ref, back.peaks_matched)
    self_m = image_metrics(a, a)
    assert self_m.pearson == pytest.approx(1.0, abs=1e-12) and self_m.mean_peak_distance in (None, 0.0)


def test_full_size_image():
    """2527 x 2463 (the supervisor detector, 6.2 M pixels); its speed is make bench's business."""
    rng = np.random.default_rng(1)
    shape = (2527, 2463)
    ref = rng.exponential(1.0, shape).astype(np.float32)
    ref[rng.integers(3, shape[0] - 3, 600), rng.integers(3, shape[1] - 3, 600)] += 5000.0
    cand = np.roll(ref, 1, axis=0) * np.float32(1.01)
    m = image_metrics(ref, cand, pixel=(1039, 685))
    assert m.peaks_ref > 500 and m.peaks_matched == m.peaks_ref
    assert m.mean_peak_distance == pytest.approx(1.0)
    assert m.sum_ratio == pytest.approx(1.01, rel=1e-6)


def test_summaries_computed_early_give_the_same_metrics_and_leave_images_alone():
    """A capture summarizes the reference while the candidate runs; the result must not depend
    on it, and float64 images (worked on in place block by block) must come back untouched."""
    rng = np.random.default_rng(7)
    ref = rng.exponential(1.0, (64, 48))
    ref[10, 20] = ref[40, 5] = 300.0
    cand = ref * 1.001 + rng.normal(0, 0.01, ref.shape)
    before = (ref.copy(), cand.copy())
    direct = image_metrics(ref, cand, pixel=(10, 20))
    early = image_metrics(ref, cand, pixel=(10, 20), ref_summary=summarize_image(ref),
                          cand_summary=summarize_image(cand))
    assert early == direct
    assert direct.peaks_ref == 2 and direct.peaks_matched == 2
    assert np.array_equal(ref, before[0]) and np.array_equal(cand, before[1])
    with pytest.raises(ValueError, match="summaries"):
        image_metrics(ref, cand, ref_summary=summarize_image(ref[:10]))
