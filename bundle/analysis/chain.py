"""The normalization chain: each factor in both engines, and each engine's self-consistency.

nanobragg-facts.md §4-§5: after the loops, per pixel,

    I_pixel_final = I_before_scaling / steps * r_e_sqr * fluence_photons_per_m2
                    * capture_fraction * polar * omega_pixel

A factor's value is its key's first occurrence, first component (an unparsed line counts as
absent here; the key-by-key rows report it). Two engines' factors are compared with the rule of
bundle.analysis.compare. One engine is *self-consistent* when the product of its own printed factors
equals its own printed I_pixel_final within a relative difference of 1e-6: a trace whose factors
do not compose to its final value printed numbers it did not use (printing fluence 1e24 while
using 1e18 gives ratio = final / product = 1e-6).
"""

from __future__ import annotations

from typing import Mapping

from bundle.analysis.numbers import NO_OVERRIDES, ratio, rel_diff, values_match
from bundle.model.records import ChainFactor, ChainReport, Consistency, Tolerance, Trace

FINAL_KEY = "I_pixel_final"
# The scaling factors, in the order of facts §5; ``steps`` divides, the others multiply.
SCALING_KEYS = (
    "I_before_scaling",
    "steps",
    "r_e_sqr",
    "fluence_photons_per_m2",
    "capture_fraction",
    "polar",
    "omega_pixel",
)
CHAIN_KEYS = SCALING_KEYS + (FINAL_KEY,)
INVERTED_KEYS = frozenset({"steps"})
CONSISTENCY = Tolerance(rtol=1e-6, atol=0.0)


def chain_values(trace: Trace) -> dict[str, float | None]:
    """Each chain key's value in ``trace`` (occurrence 0, component 0), None where absent."""
    found: dict[str, float | None] = {k: None for k in CHAIN_KEYS}
    for e in trace.entries:
        if e.key in found and e.occurrence == 0 and not e.unparsed and e.values:
            found[e.key] = e.values[0]
    return found


def _product(values: Mapping[str, float]) -> float:
    p = ratio(values["I_before_scaling"], values["steps"])  # IEEE division: steps 0 gives inf/nan
    for key in SCALING_KEYS[2:]:
        p *= values[key]
    return p


def self_consistency(trace: Trace, engine: str) -> Consistency:
    """Does ``trace``'s own chain compose to its own I_pixel_final?

    product = I_before_scaling / steps * r_e_sqr * fluence * capture_fraction * polar * omega_pixel;
    ratio = final / product; consistent when they match with rtol 1e-6 (both nan counts as
    consistent, as in bundle.analysis.compare). A missing factor makes product None; a missing factor or
    final makes ratio and consistent None; ``missing`` names the absent chain keys.
    """
    values = chain_values(trace)
    missing = tuple(k for k in CHAIN_KEYS if values[k] is None)
    product = None if any(values[k] is None for k in SCALING_KEYS) else _product(values)  # type: ignore[arg-type]
    final = values[FINAL_KEY]
    if product is None or final is None:
        return Consistency(engine=engine, product=product, final=final, ratio=None, consistent=None, missing=missing)
    return Consistency(
        engine=engine,
        product=product,
        final=final,
        ratio=ratio(final, product),
        consistent=values_match(product, final, CONSISTENCY),
        missing=missing,
    )


def chain_report(
    ref: Trace,
    cand: Trace,
    ref_engine: str = "c",
    cand_engine: str = "py",
    tolerance: Tolerance = Tolerance(),
    per_key: Mapping[str, Tolerance] = NO_OVERRIDES,
) -> ChainReport:
    """The chain factors of ``cand`` against ``ref``, and both engines' self-consistency.

    Each factor: ratio = cand / ref, rel_diff and ``matches`` by bundle.analysis.compare's rule with the
    key's tolerance. A factor absent on one side does not match. ``first_divergence`` is the
    first factor, in CHAIN_KEYS order, that does not match and that at least one side printed
    (a key neither printed is not a divergence between them; consistency lists it as missing).
    product_of_ratios = prod over SCALING_KEYS of cand/ref, steps entering as ref/cand (None when
    a factor is absent); with self-consistent engines it equals final_ratio.
    """
    if ref_engine == cand_engine:
        raise ValueError(f"reference and candidate engines must differ, both are {ref_engine!r}")
    rv, cv = chain_values(ref), chain_values(cand)
    factors = []
    for key in CHAIN_KEYS:
        r, c = rv[key], cv[key]
        if r is None or c is None:
            factors.append(ChainFactor(key=key, ref=r, cand=c, ratio=None, rel_diff=None, matches=False))
            continue
        tol = (per_key or NO_OVERRIDES).get(key, tolerance)
        factors.append(
            ChainFactor(
                key=key, ref=r, cand=c, ratio=ratio(c, r), rel_diff=rel_diff(r, c), matches=values_match(r, c, tol)
            )
        )
    by_key = {f.key: f for f in factors}

    product: float | None = 1.0
    for key in SCALING_KEYS:
        f = by_key[key]
        if f.ref is None or f.cand is None:
            product = None
            break
        q = ratio(f.ref, f.cand) if key in INVERTED_KEYS else ratio(f.cand, f.ref)
        product = product * q  # type: ignore[operator]

    first = next((f for f in factors if not f.matches and (f.ref is not None or f.cand is not None)), None)
    return ChainReport(
        factors=tuple(factors),
        first_divergence=first,
        product_of_ratios=product,
        final_ratio=by_key[FINAL_KEY].ratio,
        consistency={
            ref_engine: self_consistency(ref, engine=ref_engine),
            cand_engine: self_consistency(cand, engine=cand_engine),
        },
    )
