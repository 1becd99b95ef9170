"""report.md rendering: every section, in order, with the right numbers (pure, no disk)."""

from __future__ import annotations

import re

import pytest
from capture_fixtures import (FINAL, FLUENCE, PY_STDERR, divergent_result, parity_result,
                              partial_result)

from bundle.present.report import cell, report_markdown

PLOTS = {"images": "plots/images.png", "log_ratio": "plots/log_ratio.png",
         "key_ratios": "plots/key_ratios.png"}


def section(md: str, title: str) -> str:
    """The text of one '## title' section (up to the next '## ')."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    assert m, f"section {title!r} not found"
    return m.group(1)


def heading_order(md: str) -> list[str]:
    return re.findall(r"^## (.+)$", md, re.M)


def table_row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cells and cells[0] == first_cell:
                return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def test_divergence_report_sections_in_order():
    md = report_markdown(divergent_result(), PLOTS)
    assert heading_order(md) == ["Independent divergences", "First divergence", "Normalization chain",
                                 "All keys (pipeline order)", "Image metrics", "Plots",
                                 "Commands run", "Environment", "Reproduce"]
    # the verdict is the first line after the title, before any section
    head = md.split("\n## ")[0]
    lines = [ln for ln in head.splitlines() if ln.strip()]
    assert lines[0].startswith("# ")
    assert lines[1] == ("**Verdict: DIVERGENCE** — first divergence at "
                        "`fluence_photons_per_m2`")
    assert "Attempted" not in md


def test_first_divergence_values_and_ratio():
    md = report_markdown(divergent_result(), PLOTS)
    s = section(md, "First divergence")
    assert "`fluence_photons_per_m2`" in s
    assert table_row(s, "c")[1] == f"{FLUENCE:.15g}" == "1e+24"
    assert table_row(s, "py")[1] == "1e+30"
    assert table_row(s, "ratio py/c")[1] == "1000000"
    assert table_row(s, "rel diff")[1] == "1"  # (1e30 - 1e24) / 1e30, 3 digits


def test_chain_table_and_self_consistency():
    md = report_markdown(divergent_result(), PLOTS)
    s = section(md, "Normalization chain")
    header = table_row(s, "factor")
    assert header[:4] == ["factor", "c", "py", "ratio py/c"]
    fl = table_row(s, "**fluence_photons_per_m2**")  # first chain divergence is bold
    assert fl[1:] == ["1e+24", "1e+30", "1000000", "✗"]
    assert table_row(s, "polar")[-1] == "✓"
    assert table_row(s, "I_pixel_final")[-1] == "✗"
    assert "`c`: product" in s and "consistent ✓" in s
    assert "NOT self-consistent" not in s
    # order: factor rows in chain order
    keys = [ln.split("|")[1].strip().strip("*") for ln in s.splitlines()
            if ln.startswith("| ") and not ln.startswith("| factor") and "---" not in ln]
    assert keys == ["I_before_scaling", "steps", "r_e_sqr", "fluence_photons_per_m2",
                    "capture_fraction", "polar", "omega_pixel", "I_pixel_final"]


def test_inconsistent_trace_stands_out_and_names_the_factor():
    md = report_markdown(divergent_result(inconsistent=True), PLOTS)
    s = section(md, "Normalization chain")
    callout = [ln for ln in s.splitlines() if ln.startswith("> ")]
    assert callout, s
    assert "**✗ `py` trace is NOT self-consistent: final/product = 1e-06.**" in callout[0]
    assert f"I_pixel_final = {FINAL:.15g}" in callout[0]
    assert "`fluence_photons_per_m2`" in callout[1] and "c's value" in callout[1]
    assert "`c`: product" in s and "consistent ✓" in s


def test_key_table_full_and_in_pipeline_order():
    result = divergent_result()
    md = report_markdown(result, PLOTS)
    s = section(md, "All keys (pipeline order)")
    rows = [ln for ln in s.splitlines() if ln.startswith("| `") or ln.startswith("| **`")]
    assert len(rows) == len(result.comparison.rows)
    labels = [re.search(r"`([^`]+)`", r).group(1) for r in rows]
    assert labels[:4] == ["pix0_vector_meters"] * 3 + ["fdet_vec"]
    assert [table_row(s, "`pix0_vector_meters`")[1], table_row(s, "`F_cell`")[1]] == ["0", ""]
    assert labels[-1] == "floatimage_accumulated"
    first = [r for r in rows if "◀ first" in r]
    assert len(first) == 1 and "fluence_photons_per_m2" in first[0]
    # 15 significant digits are kept
    assert "| 1234.5678901234 | 1234.5678901234 |" in s
    assert "7.94079248018965e-30" in s
    cells = table_row(s, "**`fluence_photons_per_m2`** ◀ first")
    assert cells[1] == ""
    assert cells[2:-1] == ["1e+24", "1e+30", "9.99999e+29", "1", "1000000", "✗"]
    assert cells[-1] == ""  # this fixture carries no key-graph classification


def test_metrics_section():
    md = report_markdown(divergent_result(), PLOTS)
    s = section(md, "Image metrics")
    corr = table_row(s, "correlation (Pearson)")
    assert corr[3] == "0.997800" and corr[4] == "≥ 0.999" and corr[5] == "✗"
    assert table_row(s, "sum ratio py/c")[3] == "1000000"
    mx = table_row(s, "max_I and where")
    assert mx[1] == "446 at (slow 1039, fast 685)"
    assert table_row(s, "mean matched-peak distance (px)")[3:] == ["0.42", "≤ 1 px", "✓"]
    assert table_row(s, "bright peaks (matched)")[1:4] == ["212", "209", "205"]
    assert "value at traced pixel" in s and "RMSE" in s and "| mean |" in s


def test_no_images_and_plots_embedded():
    md = report_markdown(divergent_result(with_metrics=False), {"key_ratios": "plots/k.png"})
    assert "No images" in section(md, "Image metrics")
    assert "![key_ratios](plots/k.png)" in section(md, "Plots")
    md = report_markdown(divergent_result(), PLOTS)
    plots = section(md, "Plots")
    for name, path in PLOTS.items():
        assert f"![{name}]({path})" in plots


def test_commands_environment_reproduce():
    result = divergent_result(container=True)
    md = report_markdown(result, PLOTS)
    cmds = section(md, "Commands run")
    assert table_row(cmds, "build-c")[1:] == ["`gcc`", "build", "c", "exit 0", "0.41"]
    assert table_row(cmds, "run-py")[1] == "`python3`"
    env = section(md, "Environment")
    assert "lab-node-7" in env and "| torch | 2.13.0+cpu |" in env
    assert "sha256:" + "ab" * 32 in env and "nb-evidence:0.1.0" in env
    rep = section(md, "Reproduce")
    assert ("```sh\nnb-evidence replay "
            "bundles/20261127T210501Z-cli-flags-003-phase-j-3f9a0c1e\n```") in rep


def test_partial_report_says_what_failed():
    result = partial_result()
    md = report_markdown(result, {})
    assert heading_order(md) == ["Independent divergences", "First divergence", "Normalization chain",
                                 "All keys (pipeline order)", "Image metrics", "Plots",
                                 "Attempted", "Commands run", "Environment", "Reproduce"]
    verdict = md.split("\n## ")[0]
    assert "**Verdict: INCOMPLETE** — failed: run-py · status: **partial**" in verdict
    att = section(md, "Attempted")
    assert "`run-py` (python3, run, engine py): exit 1" in att
    assert "RuntimeError: expected scalar type Double but found Float" in att
    assert PY_STDERR.splitlines()[-1] in att
    assert ("`py` lacks 5 keys: `polar`, `omega_pixel`, `cos_2theta`, `I_pixel_final`, "
            "`floatimage_accumulated`") in att
    assert ("Compared in both engines (5 of 8): `I_before_scaling`, `steps`, `r_e_sqr`, "
            "`fluence_photons_per_m2`, `capture_fraction`.") in att
    assert "`py` self-consistency not checkable (missing polar, omega_pixel, I_pixel_final)" \
        in att
    assert "py: command run-py exited 1 after 35 of 40 keys" in att
    # failures first in the commands table
    cmds = section(md, "Commands run")
    steps = [ln.split("|")[1].strip() for ln in cmds.splitlines()
             if ln.startswith("| ") and "---" not in ln and not ln.startswith("| step")]
    assert steps == ["run-py", "build-c", "run-c"]
    assert "No images" in section(md, "Image metrics")
    assert "No plots." in section(md, "Plots")


def test_timeout_and_parity():
    import dataclasses
    result = partial_result()
    cmds = list(result.commands)
    cmds[2] = dataclasses.replace(cmds[2], exit_code=None, timed_out=True, wall_s=600.0)
    md = report_markdown(dataclasses.replace(result, commands=tuple(cmds)), {})
    assert "timed out after 600.0 s" in section(md, "Attempted")
    md = report_markdown(parity_result(), {})
    assert "**Verdict: PARITY** — all 40 keys compared agree within tolerance" in md
    assert "None: every value of the 40 keys" in section(md, "First divergence")


@pytest.mark.parametrize("text,expected", [("a|b", "a\\|b"), ("x\ny", "x y"),
                                           ("a\\|b", "a\\|b")])
def test_cells_escape_pipes(text, expected):
    assert cell(text) == expected


def test_pipe_in_values_is_escaped_in_tables():
    import dataclasses
    result = divergent_result()
    cmds = list(result.commands)
    cmds[0] = dataclasses.replace(cmds[0], step="build|c", argv=("/bin/a|b",))
    md = report_markdown(dataclasses.replace(result, commands=tuple(cmds)), {})
    row = [ln for ln in section(md, "Commands run").splitlines() if "build" in ln][0]
    assert "build\\|c" in row and "`a\\|b`" in row
    # still 6 cells
    assert len(re.split(r"(?<!\\)\|", row.strip())[1:-1]) == 6


def test_pure():
    r = divergent_result()
    assert report_markdown(r, PLOTS) == report_markdown(r, PLOTS)
