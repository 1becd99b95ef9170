"""The normalization chain: factor ratios, the first chain divergence, self-consistency."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundle.analysis.chain import CHAIN_KEYS, SCALING_KEYS, chain_report, self_consistency
from bundle.analysis.compare import compare_traces
from bundle.model.records import Tolerance
from bundle.analysis.trace import parse_lines

# The supervisor command's chain (nanobragg-facts.md §2, §4): 10 steps, fluence 1e24.
BASE = {
    "I_before_scaling": 1234.5678,
    "steps": 10,
    "r_e_sqr": 7.94079248018965e-30,
    "fluence_photons_per_m2": 1e24,
    "capture_fraction": 1.0,
    "polar": 0.91234,
    "omega_pixel": 4.3e-07,
}


def final_of(f: dict) -> float:
    return (f["I_before_scaling"] / f["steps"] * f["r_e_sqr"] * f["fluence_photons_per_m2"]
            * f["capture_fraction"] * f["polar"] * f["omega_pixel"])


def chain_trace(factors: dict, final: float | None = None, prefix="TRACE_C:", drop=(), extra=()):
    """A trace with the facts §5 key order around the chain keys."""
    values = dict(factors)
    values["I_pixel_final"] = final_of(factors) if final is None else final
    lines = [f"{prefix} pixel_pos_meters 0.1 0.2 0.3", f"{prefix} F_cell 100"]
    for key in ("I_before_scaling", "r_e_meters", "r_e_sqr", "fluence_photons_per_m2", "steps",
                "capture_fraction", "polar", "omega_pixel", "cos_2theta", "I_pixel_final"):
        if key in drop:
            continue
        if key == "r_e_meters":
            lines.append(f"{prefix} r_e_meters 2.8179403262e-15")
        elif key == "cos_2theta":
            lines.append(f"{prefix} cos_2theta 0.98")
        elif key == "steps":
            lines.append(f"{prefix} steps %d" % values[key])
        else:
            lines.append(f"{prefix} {key} %.15g" % values[key])
    lines += list(extra)
    return parse_lines(lines, prefix)


def test_identical_chains():
    t = chain_trace(BASE)
    rep = chain_report(t, chain_trace(BASE, prefix="TRACE_PY:"))
    assert [f.key for f in rep.factors] == list(CHAIN_KEYS)
    assert all(f.matches and f.ratio == 1.0 for f in rep.factors)
    assert rep.first_divergence is None
    assert rep.product_of_ratios == 1.0 and rep.final_ratio == 1.0
    for engine in ("c", "py"):
        c = rep.consistency[engine]
        assert c.consistent is True and c.missing == () and c.ratio == pytest.approx(1.0, rel=1e-12)


def test_fluence_scaled_in_the_candidate():
    """fluence 1e6 larger in py, and its final scaled with it: py is wrong but self-consistent."""
    scaled = dict(BASE, fluence_photons_per_m2=1e30)
    ref, cand = chain_trace(BASE), chain_trace(scaled, prefix="TRACE_PY:")
    rep = chain_report(ref, cand)
    fd = rep.first_divergence
    assert fd.key == "fluence_photons_per_m2"
    assert fd.ratio == pytest.approx(1e6, rel=1e-12)
    assert rep.final_ratio == pytest.approx(1e6, rel=1e-12)
    assert rep.product_of_ratios == pytest.approx(rep.final_ratio, rel=1e-12)
    assert rep.consistency["py"].consistent is True
    assert rep.consistency["c"].consistent is True
    # The key-by-key comparison agrees: fluence is the first key that differs in C order.
    comp = compare_traces(ref, cand)
    assert comp.first_divergence.key == "fluence_photons_per_m2"
    assert comp.chain == rep


def test_printed_fluence_not_used():
    """Prints fluence 1e24 but computed with 1e18: not self-consistent, final/product = 1e-6."""
    used = dict(BASE, fluence_photons_per_m2=1e18)
    t = chain_trace(BASE, final=final_of(used))
    c = self_consistency(t, "py")
    assert c.consistent is False
    assert c.ratio == pytest.approx(1e-6, rel=1e-12)
    assert c.product == pytest.approx(final_of(BASE), rel=1e-14)
    assert c.final == float("%.15g" % final_of(used))


@pytest.mark.parametrize("factor", [2.0, 0.5, 1e-3, 1 + 1e-5])
def test_factor_applied_but_not_printed_gives_ratio_equal_to_it(factor):
    t = chain_trace(BASE, final=final_of(BASE) * factor)
    c = self_consistency(t, "c")
    assert c.consistent is False
    assert c.ratio == pytest.approx(factor, rel=1e-12)


def test_polar_printed_but_not_applied():
    t = chain_trace(BASE, final=final_of(dict(BASE, polar=1.0)))
    c = self_consistency(t, "c")
    assert c.consistent is False
    assert c.ratio == pytest.approx(1 / BASE["polar"], rel=1e-12)


def test_float32_rounding_is_still_consistent():
    t = chain_trace(BASE, final=final_of(BASE) * (1 + 4e-7))
    assert self_consistency(t, "py").consistent is True


def test_missing_factor():
    t = chain_trace(BASE, drop=("capture_fraction",))
    c = self_consistency(t, "py")
    assert c.product is None and c.ratio is None and c.consistent is None
    assert c.missing == ("capture_fraction",)
    assert c.final is not None
    rep = chain_report(chain_trace(BASE), t)
    assert rep.first_divergence.key == "capture_fraction"
    assert rep.first_divergence.cand is None and rep.first_divergence.ratio is None
    assert rep.product_of_ratios is None
    assert rep.final_ratio == 1.0


def test_missing_final():
    c = self_consistency(chain_trace(BASE, drop=("I_pixel_final",)), "c")
    assert c.product == pytest.approx(final_of(BASE)) and c.final is None
    assert c.consistent is None and c.missing == ("I_pixel_final",)


def test_a_key_neither_engine_printed_is_not_a_divergence():
    ref = chain_trace(BASE, drop=("capture_fraction",))
    cand = chain_trace(dict(BASE, polar=0.5), drop=("capture_fraction",), prefix="TRACE_PY:")
    rep = chain_report(ref, cand)
    assert rep.first_divergence.key == "polar"
    by_key = {f.key: f for f in rep.factors}
    assert by_key["capture_fraction"].matches is False and by_key["capture_fraction"].ref is None


def test_duplicate_and_unparsed_chain_keys():
    # occurrence 0 counts; an unparsed line is absent from the chain (the rows report it).
    t = chain_trace(BASE, extra=["TRACE_C: polar 0.1"])
    assert self_consistency(t, "c").consistent is True
    bad = chain_trace(BASE, drop=("polar",), extra=["TRACE_C: polar 0.9 bogus"])
    assert self_consistency(bad, "c").missing == ("polar",)


def test_zero_steps_and_zero_final_do_not_raise():
    t = chain_trace(dict(BASE, steps=0), final=0.0)
    c = self_consistency(t, "c")
    assert c.product == math.inf and c.consistent is False
    z = chain_trace(dict(BASE, I_before_scaling=0.0), final=0.0)
    c0 = self_consistency(z, "c")
    assert c0.consistent is True and c0.product == 0.0 and math.isnan(c0.ratio)


positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    st.fixed_dictionaries({k: positive for k in SCALING_KEYS if k != "steps"}),
    st.integers(1, 1000),
    st.sampled_from(SCALING_KEYS),
    st.floats(min_value=1.01, max_value=1e6),
)
def test_one_scaled_factor_is_the_first_chain_divergence(base, steps, key, k):
    base = dict(base, steps=steps)
    ref = chain_trace(base)
    assert self_consistency(ref, "c").consistent is True
    changed = dict(base)
    if key == "steps":
        changed["steps"] = steps * 2
    else:
        changed[key] = base[key] * k
    cand = chain_trace(changed, prefix="TRACE_PY:")
    rep = chain_report(ref, cand, tolerance=Tolerance(rtol=1e-9))
    assert rep.first_divergence.key == key
    assert rep.consistency["py"].consistent is True
    assert rep.product_of_ratios == pytest.approx(rep.final_ratio, rel=1e-9)
    expected = 0.5 if key == "steps" else k
    assert rep.final_ratio == pytest.approx(expected, rel=1e-9)
