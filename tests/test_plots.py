"""The report's plots: pure bar-chart data, display pooling, and real PNGs of a full-size image."""

from __future__ import annotations

import dataclasses
import math

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image
from capture_fixtures import (REF_TRACE, compare, divergent_result, partial_result,
                              synthetic_images)

from bundle.analysis import pooling
from bundle.present import drawing
from bundle.present import imageplots
from bundle.present import plots

KEYS = [k for k, _ in REF_TRACE]


@pytest.fixture(scope="module")
def detector_images():
    """2527 × 2463 float32, 400 spots; candidate = reference with one region × 3."""
    return synthetic_images()


def test_bar_chart_data_highlights_the_first_divergence():
    data = plots.bar_chart_data(divergent_result().comparison)
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
    data = plots.bar_chart_data(result.comparison)
    i = KEYS.index("rot_a_angstroms")
    assert data.values[i] == pytest.approx(math.log10(1.1))
    assert data.keys[data.highlighted_index] == "rot_a_angstroms"
    j = KEYS.index("F_latt_b")
    assert math.isinf(data.values[j]) and data.flags[j] == "sign"
    assert data.flags[-5:] == ("missing",) * 5 and all(math.isnan(v) for v in data.values[-5:])
    assert data.tolerances[KEYS.index("F_cell")] == pytest.approx(math.log10(1 + 1e-9))


def test_bar_chart_data_none_without_comparison():
    assert plots.bar_chart_data(None) is None


def test_pool_max_keeps_single_pixel_peaks_and_never_modifies_data():
    img = np.zeros((2527, 2463), dtype=np.float32)
    img[1039, 685] = 5.0
    img[2526, 2462] = 7.0  # in the last, partial block
    img[5, 7] = np.nan  # NaN is ignored: its block shows its other pixels' max
    before = img.copy()
    f = pooling.display_block(img.shape)
    pooled = pooling.pool_max(img, f)
    assert f == 5 and pooled.shape == (506, 493)
    assert max(pooled.shape) <= pooling.PANEL_MAX
    assert pooled[1039 // 5, 685 // 5] == 5.0 and pooled[-1, -1] == 7.0
    assert np.count_nonzero(pooled) == 2 and pooled[1, 1] == 0.0
    assert np.array_equal(img, before, equal_nan=True)
    # the same as a plain block max over a 4-D view, partial blocks included
    rng = np.random.default_rng(3)
    small = rng.random((23, 17)).astype(np.float32)
    padded = np.full((25, 20), -np.inf, np.float32)
    padded[:23, :17] = small
    assert np.array_equal(pooling.pool_max(small, 5), padded.reshape(5, 5, 4, 5).max(axis=(1, 3)))


def test_pooled_log_ratio_shows_the_scaled_region(detector_images):
    ref, cand = detector_images
    f = pooling.display_block(ref.shape)
    pooled, vals = imageplots.pooled_log_ratio(ref, cand, f)
    inside = pooled[300 // f + 2:900 // f - 2, 1500 // f + 2:2200 // f - 2]
    outside = pooled[1200 // f:, :1400 // f]
    assert np.nanmax(np.abs(inside - math.log10(3.0))) < 1e-5
    assert np.nanmax(np.abs(outside)) < 1e-5
    assert np.isnan(pooled).mean() > 0.5  # dim pixels are masked
    # the sparse pooled path agrees with the full-resolution helper
    full = imageplots.log_ratio(ref, cand)
    assert np.count_nonzero(~np.isnan(full)) == vals.size


def test_render_plots_full_size(tmp_path, detector_images):
    ref, cand = detector_images
    ref_before = ref.copy()
    result = divergent_result()
    out = tmp_path / "bundle" / "plots"
    written = plots.render_plots(result, {"c": ref, "py": cand}, out)
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


def test_a_single_bright_pixel_survives_display(tmp_path):
    """A one-pixel peak on a full detector is pooled, never dropped: it shows in the PNG at its
    place, in the top colour of the scale."""
    img = np.zeros((2527, 2463), np.float32)
    img[1500, 2000] = 100.0
    img[10, 10] = 1e-3
    path = tmp_path / "images.png"
    imageplots.plot_images("c", img, "py", img, None, path)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    top = imageplots.colorize_log(np.array([100.0]), 1e-3, 100.0)[0]
    hits = np.argwhere((np.abs(png - top).sum(axis=2) == 0))
    assert len(hits) >= 2  # one per panel (the colour bar's top row matches too)
    f = pooling.display_block(img.shape)
    # the first panel's hit sits where (1500, 2000) falls, within the pooled block
    panel_hits = hits[hits[:, 1] < 72 + 2463 // f]
    y, x = panel_hits[0]
    assert abs((y - 74) - 1500 / f) <= 1 and abs((x - 72) - 2000 / f) <= 1


def test_nice_ticks():
    assert drawing.nice_ticks(0, 2462) == [0, 500, 1000, 1500, 2000]
    assert drawing.nice_ticks(0, 3) == [0, 1, 2, 3]
    assert drawing.nice_ticks(-0.47, 0.47, most=7) == pytest.approx([-0.4, -0.2, 0, 0.2, 0.4])


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


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("ref, cand", [
    (np.zeros((30, 20), np.float32), np.zeros((30, 20), np.float32)),
    (np.full((30, 20), np.nan, np.float32), np.full((30, 20), np.nan, np.float32)),
    (np.full((30, 20), np.inf, np.float32), np.ones((30, 20), np.float32)),
    (-np.ones((30, 20), np.float32), np.ones((30, 20), np.float32)),
], ids=["zeros", "all-nan", "inf", "negative"])
def test_degenerate_images_still_plot_without_warnings(tmp_path, ref, cand):
    """A broken engine's image is evidence too: the plots are drawn, quietly."""
    imageplots.plot_images("c", ref, "py", cand, (3, 4), tmp_path / "i.png")
    imageplots.plot_log_ratio("c", ref, "py", cand, (3, 4), tmp_path / "l.png")
    for name in ("i.png", "l.png"):
        assert Image.open(tmp_path / name).size[0] > 300
