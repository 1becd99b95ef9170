"""The report's plots: pure bar-chart data, display pooling, and real PNGs of a full-size image."""

from __future__ import annotations

import dataclasses
import math
import time

import matplotlib.image as mpimg
import numpy as np
import pytest
from capture_fixtures import (REF_TRACE, compare, divergent_result, partial_result,
                              synthetic_images)

from bundle import plots

KEYS = [k for k, _ in REF_TRACE]


@pytest.fixture(scope="module")
def detector_images():
    """2527 × 2463 float32, 400 spots; candidate = reference with one region × 3."""
    return synthetic_images()


def test_bar_chart_data_highlights_the_first_divergence():
    data = plots.bar_chart_data(divergent_result())
    assert list(data.keys) == KEYS  # one bar per key, pipeline order
    hi = data.highlighted_index
    assert data.keys[hi] == "fluence_photons_per_m2"
    assert data.values[hi] == pytest.approx(6.0)
    assert data.tolerance == pytest.approx(math.log10(1 + 1e-6))
    assert data.values[KEYS.index("polar")] == 0.0
    assert data.diverges[KEYS.index("I_pixel_final")]
    assert not data.diverges[KEYS.index("F_cell")]
    assert sum(data.diverges) == 3  # fluence, I_pixel_final, floatimage_accumulated


def test_bar_chart_data_worst_component_missing_and_sign():
    ref, cand = dict(REF_TRACE), dict(REF_TRACE[:35])
    cand["rot_a_angstroms"] = (-14.356, -21.881 * 1.001, -5.547 * 1.1)  # worst: component 2
    cand["F_latt_b"] = (2.38,)  # sign flip
    result = dataclasses.replace(partial_result(),
                                 comparison=compare(ref, cand, key_rtol={"F_cell": 1e-9}))
    data = plots.bar_chart_data(result)
    i = KEYS.index("rot_a_angstroms")
    assert data.values[i] == pytest.approx(math.log10(1.1))
    assert data.keys[data.highlighted_index] == "rot_a_angstroms"
    j = KEYS.index("F_latt_b")
    assert math.isinf(data.values[j]) and data.flags[j] == "sign"
    assert data.flags[-5:] == ("missing",) * 5 and all(math.isnan(v) for v in data.values[-5:])
    assert data.tolerances[KEYS.index("F_cell")] == pytest.approx(math.log10(1 + 1e-9))


def test_bar_chart_data_none_without_comparison():
    assert plots.bar_chart_data(dataclasses.replace(partial_result(), comparison=None)) is None


def test_pool_max_keeps_single_pixel_peaks_and_never_modifies_data():
    img = np.zeros((2527, 2463), dtype=np.float32)
    img[1039, 685] = 5.0
    img[2526, 2462] = 7.0  # in the last, partial block
    before = img.copy()
    pooled, f = plots.pool_max(img)
    assert f == 4 and pooled.shape == (632, 616)
    assert max(pooled.shape) <= plots.DISPLAY_MAX
    assert pooled[1039 // 4, 685 // 4] == 5.0 and pooled[-1, -1] == 7.0
    assert np.count_nonzero(pooled) == 2
    assert np.array_equal(img, before)


def test_pooled_log_ratio_shows_the_scaled_region(detector_images):
    ref, cand = detector_images
    pooled, vals, f = plots.pooled_log_ratio(ref, cand)
    inside = pooled[300 // f + 2:900 // f - 2, 1500 // f + 2:2200 // f - 2]
    outside = pooled[1200 // f:, :1400 // f]
    assert np.nanmax(np.abs(inside - math.log10(3.0))) < 1e-5
    assert np.nanmax(np.abs(outside)) < 1e-5
    assert np.isnan(pooled).mean() > 0.5  # dim pixels are masked
    # the sparse pooled path agrees with the full-resolution helper
    full = plots.log_ratio(ref, cand)
    assert np.count_nonzero(~np.isnan(full)) == vals.size


def test_render_plots_full_size(tmp_path, detector_images):
    ref, cand = detector_images
    ref_before = ref.copy()
    result = divergent_result()
    out = tmp_path / "bundle" / "plots"
    timings = {}
    t0 = time.perf_counter()
    written = plots.render_plots(result, {"c": ref, "py": cand}, out)
    timings["all"] = time.perf_counter() - t0
    assert written == {"images": "plots/images.png", "log_ratio": "plots/log_ratio.png",
                       "key_ratios": "plots/key_ratios.png"}
    for name, rel in written.items():
        path = tmp_path / "bundle" / rel
        assert path.stat().st_size < 1_000_000, name
        pixels = mpimg.imread(path)
        h, w = pixels.shape[:2]
        assert 400 <= h <= 1200 and 600 <= w <= 2000, (name, pixels.shape)
        assert pixels[..., :3].std() > 0.05, name  # not a blank canvas
    assert np.array_equal(ref, ref_before)
    # a generous guard (shared CI machines are slow); the target is ~2 s per plot
    assert timings["all"] < 20, timings


def test_each_plot_is_quick(tmp_path, detector_images):
    ref, cand = detector_images
    result = divergent_result()
    plots.plot_key_ratios(plots.bar_chart_data(result), "c", "py", tmp_path / "warm.png")
    for fn in (lambda p: plots.plot_images("c", ref, "py", cand, result.pixel, p),
               lambda p: plots.plot_log_ratio("c", ref, "py", cand, result.pixel, p),
               lambda p: plots.plot_key_ratios(plots.bar_chart_data(result), "c", "py", p)):
        t0 = time.process_time()
        fn(tmp_path / "x.png")
        assert time.process_time() - t0 < 6.0  # CPU seconds; ~0.5-1 s on an idle core


def test_render_plots_without_images_draws_only_the_bar_chart(tmp_path):
    result = partial_result()
    written = plots.render_plots(result, {"c": np.ones((4, 4), np.float32)}, tmp_path / "plots")
    assert written == {"key_ratios": "plots/key_ratios.png"}
    assert mpimg.imread(tmp_path / "plots" / "key_ratios.png").shape[2] in (3, 4)


def test_render_plots_nothing_to_draw(tmp_path):
    result = dataclasses.replace(partial_result(), comparison=None)
    assert plots.render_plots(result, {}, tmp_path / "plots") == {}
    assert not (tmp_path / "plots").exists()


def test_raw_1d_images_are_viewed_with_the_metrics_shape(tmp_path):
    result = divergent_result()
    ref, cand = synthetic_images(n_spots=50)
    written = plots.render_plots(result, {"c": ref.ravel(), "py": cand.ravel()},
                                 tmp_path / "plots")
    assert set(written) == {"images", "log_ratio", "key_ratios"}


def test_display_block_never_shrinks_an_image_below_its_axes():
    """Pooled to at most the axes' pixel size, the renderer only enlarges: no peak is dropped."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.2, 7), dpi=plots.DPI)
    fig.subplots_adjust(left=0.1, right=0.86, top=0.9, bottom=0.08)
    ax = fig.subplots()
    f = plots.display_block(ax, (2527, 2463))
    pos = ax.get_position()
    h_px = pos.height * fig.get_figheight() * fig.dpi
    w_px = pos.width * fig.get_figwidth() * fig.dpi
    scale = min(w_px / 2463, h_px / 2527)
    assert f * scale >= 1 - 1e-9  # one pooled pixel covers at least one screen pixel
    assert (f - 1) * scale < 1  # and f is the smallest such block
    assert math.ceil(2527 / f) <= h_px + 1 and math.ceil(2463 / f) <= w_px + 1
