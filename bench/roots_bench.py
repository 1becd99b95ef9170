"""Key-graph classification and the key-graph plot on a 40-key trace (issue 12's goals:
classification <= 5 ms added to a capture, the plot <= 100 ms). Prints figures; asserts nothing.

The traces are the nanoBragg schema's 40 keys with three independent faults injected, so every
class occurs; best and median of repeated runs are printed."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bundle.analysis.compare import compare_traces  # noqa: E402
from bundle.analysis.roots import classify  # noqa: E402
from bundle.capture.target import load_target  # noqa: E402
from bundle.model.records import Trace, TraceEntry  # noqa: E402
from bundle.present.keygraph import plot_key_graph  # noqa: E402

VECTORS = {"pix0_vector_meters", "fdet_vec", "sdet_vec", "pixel_pos_meters", "diffracted_vec",
           "incident_vec", "scattering_vec_A_inv", "hkl_frac", "hkl_rounded"} | {
    f"rot_{a}_{u}" for a in "abc" for u in ("angstroms", "star_A_inv")} - {"rot_a_star_angstroms"}


def _trace(prefix: str, keys: tuple[str, ...], bump: dict[str, float]) -> Trace:
    entries = []
    for i, k in enumerate(keys):
        n = 3 if k in VECTORS or k.startswith("rot_") else 1
        vals = tuple((1.0 + i + c) * (1.0 + bump.get(k, 0.0)) for c in range(n))
        entries.append(TraceEntry(k, 0, i, i + 1, tuple(repr(v) for v in vals), vals, (False,) * n))
    return Trace(prefix=prefix, entries=tuple(entries))


def _time(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    graph = load_target("nanobragg").graph
    ref = _trace("TRACE_C:", graph.keys, {})
    bump = {"pix0_vector_meters": 1e-5, "rot_a_angstroms": 1e-4, "fluence_photons_per_m2": 9.0}
    for k in ("pixel_pos_meters", "R_distance_meters", "hkl_frac", "F_latt", "I_pixel_final"):
        bump[k] = 2e-5
    cmp = compare_traces(ref, _trace("TRACE_PY:", graph.keys, bump), "c", "py")
    report = classify(cmp, graph)
    cls = _time(lambda: classify(cmp, graph), 200)
    print(f"classification, 40 keys ({len(cmp.rows)} rows): best {min(cls):.2f} ms, "
          f"median {statistics.median(cls):.2f} ms (goal <= 5 ms)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "key_graph.png"
        plot_key_graph(report, path)  # the first draw pays matplotlib's imports and font cache
        plot = _time(lambda: plot_key_graph(report, path), 10)
    print(f"key-graph plot, 40 keys: best {min(plot):.0f} ms, median {statistics.median(plot):.0f} ms "
          f"(goal <= 100 ms)")


if __name__ == "__main__":
    main()
