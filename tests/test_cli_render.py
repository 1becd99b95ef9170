"""cli/render.py: the terminal summary of a manifest, rendered into a recording Console."""

from __future__ import annotations

from rich.console import Console

from cli.render import summary_renderables


def manifest_divergent(consistent_py: bool = False) -> dict:
    chain_keys = ["I_before_scaling", "steps", "r_e_sqr", "fluence_photons_per_m2",
                  "capture_fraction", "polar", "omega_pixel", "I_pixel_final"]
    c_vals = [1234.5678901234, 10, 7.94079248018965e-30, 1e24, 1, 0.991234567890123,
              4.17226789012345e-07, 4.05440798341534e-10]
    py_vals = list(c_vals)
    py_vals[3] = 1e30
    factors = [{"key": k, "c": a, "py": b, "ratio": b / a, "rel_diff": abs(b - a) / max(a, b),
                "matches": a == b} for k, a, b in zip(chain_keys, c_vals, py_vals)]
    return {
        "bundle_id": "20261127T210501Z-x-3f9a0c1e",
        "result": {
            "verdict": "divergence", "status": "complete", "bundle": "bundles/20261127T210501Z-x",
            "engines": {"ref": "c", "cand": "py"},
            "first_divergence": {"key": "fluence_photons_per_m2", "occurrence": 0,
                                 "component": 0, "status": "differ", "c": 1e24, "py": 1e30,
                                 "abs_diff": 1e30 - 1e24, "rel_diff": 0.999999,
                                 "ratio": 1e6, "rtol": 1e-6, "atol": 0.0},
            "first_chain_divergence": {"key": "fluence_photons_per_m2", "component": 0,
                                       "c": 1e24, "py": 1e30, "rel_diff": 0.999999,
                                       "ratio": 1e6},
            "chain": {"factors": factors, "product_of_ratios": 1e6, "final_ratio": 1.0,
                      "consistency": {
                          "c": {"product": 4.05440798341534e-10, "final": 4.05440798341534e-10,
                                "ratio": 1.0, "consistent": True, "missing": []},
                          "py": {"product": 4.05440798341534e-4, "final": 4.05440798341534e-10,
                                 "ratio": 1e-6, "consistent": consistent_py, "missing": []}}},
            "missing": {"c": [], "py": []}, "keys_compared": 40,
            "metrics": {"slow": 2527, "fast": 2463, "pearson": 0.9978, "sum_ratio": 124538.0,
                        "rmse": 12.75, "peaks_matched": 205, "peaks": {"c": 212, "py": 209},
                        "mean_peak_distance": 0.42, "correlation_pass": False,
                        "peak_distance_pass": True,
                        "c": {"total": 1234.5, "mean": 1.98e-4, "max": 446.0, "max_slow": 1039,
                              "max_fast": 685, "traced_value": 4.05e-10},
                        "py": {"total": 1.5e8, "mean": 24.1, "max": 5.5e7, "max_slow": 1039,
                               "max_fast": 685, "traced_value": "nan"}},
            "failed_commands": [], "notes": [],
        },
    }


def render(manifest: dict) -> str:
    console = Console(record=True, width=120, color_system=None)
    for r in summary_renderables(manifest):
        console.print(r)
    return console.export_text()


def test_divergent_summary():
    text = render(manifest_divergent())
    assert "Verdict: DIVERGENCE — first divergence at fluence_photons_per_m2" in text
    assert "First divergence" in text and "1e+30" in text and "1000000" in text
    assert "Normalization chain" in text
    line = next(ln for ln in text.splitlines() if "fluence_photons_per_m2" in ln and "✗" in ln)
    assert "1e+24" in line and "1e+30" in line
    assert any("polar" in ln and "✓" in ln for ln in text.splitlines())
    assert "py: NOT self-consistent: final/product = 1e-06" in text
    assert "c: product 4.05440798341534e-10 vs final 4.05440798341534e-10" in text
    assert "correlation (≥ 0.999)" in text and "0.9978" in text
    assert "124538" in text and "446 @ (1039, 685)" in text
    assert "nan" in text  # a "nan" string from the manifest is shown, not crashed on
    assert "Failed commands" not in text


def test_colours_of_marks():
    console = Console(record=True, width=120, force_terminal=True, color_system="truecolor")
    for r in summary_renderables(manifest_divergent()):
        console.print(r)
    html = console.export_html(inline_styles=True)
    assert "color: #008000" in html or "color: #00ff00" in html or "green" in html
    assert "#800000" in html or "#ff0000" in html or "red" in html


def test_partial_summary_lists_failures_and_missing():
    m = manifest_divergent(consistent_py=True)
    r = m["result"]
    r.update(verdict="incomplete", status="partial", first_divergence=None,
             metrics=None, missing={"c": [], "py": ["polar", "omega_pixel", "I_pixel_final"]},
             failed_commands=[{"step": "run-py", "exit_code": 1, "timed_out": False,
                               "error": None},
                              {"step": "run-c", "exit_code": None, "timed_out": True,
                               "error": "timeout 600 s"}],
             notes=["py: command run-py exited 1 after 37 of 40 keys"])
    r["chain"]["consistency"]["py"] = {"product": None, "final": None, "ratio": None,
                                       "consistent": None,
                                       "missing": ["polar", "omega_pixel", "I_pixel_final"]}
    text = render(m)
    assert "Verdict: INCOMPLETE" in text and "(status: partial)" in text
    assert "Image metrics: no images" in text
    assert "Failed commands" in text
    run_py = next(ln for ln in text.splitlines() if "run-py" in ln and "│" in ln)
    assert "1" in run_py
    assert "timeout" in next(ln for ln in text.splitlines() if "run-c" in ln and "│" in ln)
    assert "py lacks: polar, omega_pixel, I_pixel_final" in text
    assert "self-consistency not checkable (missing polar, omega_pixel, I_pixel_final)" in text
    assert "37 of 40 keys" in text


def test_pure_returns_renderables_only(capsys):
    out = summary_renderables(manifest_divergent())
    assert isinstance(out, list) and out
    assert capsys.readouterr().out == ""
