"""Key-by-key comparison: self-match, first divergence, missing keys, length mismatch, JSON."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bundle.analysis.compare import compare_traces, json_float, ratio, rel_diff, summary_json, values_match
from bundle.model.records import Tolerance
from bundle.analysis.trace import parse_lines

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
KEY_NAMES = [f"key_{i}" for i in range(8)] + ["F_cell", "omega_pixel", "hkl_rounded"]
entries_st = st.lists(
    st.tuples(st.sampled_from(KEY_NAMES), st.lists(ANY_FLOAT, min_size=1, max_size=3)), min_size=1, max_size=20
)


def fmt(x: float) -> str:
    return "%.15g" % x


def make_trace(entries, prefix="TRACE_C:"):
    """Key lines as C prints them; a str value is printed as is (to make unparsed tokens)."""
    lines = [f"{prefix} {k} {' '.join(v if isinstance(v, str) else fmt(v) for v in vs)}" for k, vs in entries]
    return parse_lines(lines, prefix)


# --------------------------------------------------------------------------- the numeric rule


@given(ANY_FLOAT, ANY_FLOAT)
def test_rel_diff_is_symmetric_and_bounded(a, b):
    r1, r2 = rel_diff(a, b), rel_diff(b, a)
    assert (math.isnan(r1) and math.isnan(r2)) or r1 == r2
    assert math.isnan(r1) or 0.0 <= r1 <= 2.0
    tol = Tolerance(rtol=1e-6, atol=1e-12)
    assert values_match(a, b, tol) == values_match(b, a, tol)


@given(ANY_FLOAT)
def test_a_value_matches_itself_even_under_zero_tolerance(a):
    assert values_match(a, a, Tolerance(rtol=0.0, atol=0.0))
    assert rel_diff(a, a) == 0.0


@pytest.mark.parametrize(
    "cand, ref, expected",
    [(1.0, 0.0, math.inf), (-1.0, 0.0, -math.inf), (1.0, -0.0, -math.inf), (0.0, 0.0, math.nan),
     (math.nan, 0.0, math.nan), (6.0, 3.0, 2.0)],
)
def test_ratio_with_zero_reference_is_ieee(cand, ref, expected):
    q = ratio(cand, ref)
    assert (math.isnan(q) and math.isnan(expected)) or q == expected


def test_special_values():
    tol = Tolerance()
    assert values_match(0.0, -0.0, tol)
    assert values_match(math.inf, math.inf, tol)
    assert not values_match(math.inf, -math.inf, tol)
    assert not values_match(math.nan, 1.0, tol)
    assert rel_diff(math.inf, 1.0) == 1.0 and rel_diff(math.inf, -math.inf) == 2.0
    assert rel_diff(1e308, -1e308) == 2.0  # no overflow
    assert values_match(1.0, 1.0 + 1e-7, tol) and not values_match(1.0, 1.0 + 1e-5, tol)
    assert values_match(1e-20, 2e-20, Tolerance(rtol=0.0, atol=1e-19))


# --------------------------------------------------------------------------- properties


@given(entries_st)
def test_a_trace_matches_itself(entries):
    t = make_trace(entries)
    c = compare_traces(t, t)
    assert all(r.status == "match" for r in c.rows)
    assert c.first_divergence is None
    assert c.missing == {"c": (), "py": ()}
    assert c.keys_compared == len(t.keys())
    assert len(c.rows) == sum(len(vs) for _, vs in entries)


def _bump(v: float) -> float:
    """A value certainly beyond rtol 1e-6 of ``v`` after %.15g printing."""
    if not math.isfinite(v):
        return 1.0
    return v + max(abs(v), 1.0) * 1e-3 if abs(v) < 1e300 else v / 2


@given(entries_st, st.data())
def test_one_perturbed_value_is_the_first_divergence(entries, data):
    i = data.draw(st.integers(0, len(entries) - 1))
    j = data.draw(st.integers(0, len(entries[i][1]) - 1))
    key, vs = entries[i]
    changed = list(vs)
    changed[j] = _bump(vs[j])
    cand_entries = list(entries)
    cand_entries[i] = (key, changed)
    ref, cand = make_trace(entries), make_trace(cand_entries, "TRACE_PY:")
    c = compare_traces(ref, cand)
    differ = [r for r in c.rows if r.status != "match"]
    assert len(differ) == 1
    fd = c.first_divergence
    assert fd is differ[0]
    occurrence = sum(1 for k, _ in entries[:i] if k == key)
    assert (fd.key, fd.occurrence, fd.component, fd.status) == (key, occurrence, j, "differ")
    assert fd.position == i
    assert fd.ref == float(fmt(vs[j])) or (math.isnan(fd.ref) and math.isnan(float(fmt(vs[j]))))


@given(entries_st, st.data())
def test_a_removed_key_is_missing(entries, data):
    key = data.draw(st.sampled_from(sorted({k for k, _ in entries})))
    remaining = [(k, vs) for k, vs in entries if k != key]
    assume(remaining)
    ref, cand = make_trace(entries), make_trace(remaining)
    c = compare_traces(ref, cand)
    assert c.missing == {"c": (), "py": (key,)}
    assert {r.key for r in c.rows if r.status != "match"} == {key}
    assert all(r.status == "missing_cand" and r.cand is None for r in c.rows if r.key == key)
    assert c.first_divergence.key == key
    assert c.keys_compared == len(cand.keys())
    # and the other way round: the reference lacks it
    back = compare_traces(cand, ref, "py", "c")
    assert back.missing == {"py": (key,), "c": ()}
    assert all(r.status == "missing_ref" and r.ref is None for r in back.rows if r.key == key)
    assert [r.position for r in back.rows] == sorted(r.position for r in back.rows)


@settings(max_examples=50)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=3),
       st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=3))
def test_length_mismatch_is_reported_not_padded(ref_vs, cand_vs):
    n_ref, n_cand = len(ref_vs), len(cand_vs)
    common = min(n_ref, n_cand)
    cand_vs = ref_vs[:common] + cand_vs[common:]
    c = compare_traces(make_trace([("v", ref_vs)]), make_trace([("v", cand_vs)]))
    assert len(c.rows) == max(n_ref, n_cand)
    assert [r.status for r in c.rows[:common]] == ["match"] * common
    for r in c.rows[common:]:
        if n_ref > n_cand:
            assert r.status == "missing_cand" and r.cand is None and r.ref is not None
        else:
            assert r.status == "missing_ref" and r.ref is None and r.cand is not None
        assert r.abs_diff is None and r.rel_diff is None and r.ratio is None
    if n_ref != n_cand:
        assert c.first_divergence.component == common


# --------------------------------------------------------------------------- specific cases


def test_rows_follow_reference_order_then_candidate_only():
    ref = make_trace([("b", [1]), ("a", [2]), ("b", [3])])
    cand = make_trace([("z", [9]), ("a", [2]), ("b", [1]), ("b", [3]), ("b", [4])])
    c = compare_traces(ref, cand)
    assert [(r.key, r.occurrence, r.status, r.position) for r in c.rows] == [
        ("b", 0, "match", 0),
        ("a", 0, "match", 1),
        ("b", 1, "match", 2),
        ("z", 0, "missing_ref", 3),
        ("b", 2, "missing_ref", 4),
    ]
    assert c.missing == {"c": ("z",), "py": ()}
    assert c.keys_compared == 2
    assert (c.first_divergence.key, c.first_divergence.status) == ("z", "missing_ref")


def test_unparsed_entries_are_divergences():
    ref = make_trace([("a", [1]), ("F_cell", [1.5, 2.0])])
    cand = make_trace([("a", [1]), ("F_cell", ["1.5", "oops"])])
    c = compare_traces(ref, cand)
    rows = [r for r in c.rows if r.key == "F_cell"]
    assert [r.status for r in rows] == ["unparsed", "unparsed"]
    assert rows[0].ref == 1.5 and rows[0].cand is None
    assert c.first_divergence is rows[0]


def test_per_key_tolerance_overrides_the_default():
    ref = make_trace([("a", [1.0]), ("b", [1.0])])
    cand = make_trace([("a", [1.001]), ("b", [1.001])])
    c = compare_traces(ref, cand, tolerance=Tolerance(rtol=1e-6), per_key={"a": Tolerance(rtol=1e-2)})
    a, b = c.rows
    assert (a.status, a.rtol) == ("match", 1e-2)
    assert (b.status, b.rtol) == ("differ", 1e-6)
    assert b.rel_diff == pytest.approx(0.001 / 1.001)
    assert b.ratio == pytest.approx(1.001)
    assert c.first_divergence.key == "b"


def test_same_engine_names_are_refused():
    t = make_trace([("a", [1])])
    with pytest.raises(ValueError):
        compare_traces(t, t, "c", "c")


# --------------------------------------------------------------------------- JSON


def test_summary_json_shape_and_safety():
    ref = make_trace([("a", [0.0]), ("b", [float("nan")]), ("omega_pixel", [1.0]), ("only_c", [1])])
    cand = make_trace([("a", [2.0]), ("b", [float("nan")]), ("omega_pixel", [2.0]), ("only_py", [1])])
    s = summary_json(compare_traces(ref, cand))
    text = json.dumps(s, allow_nan=False)  # raises on a bare nan/inf
    assert json.loads(text) == s
    fd = s["first_divergence"]
    assert fd["key"] == "a" and fd["c"] == 0.0 and fd["py"] == 2.0
    assert fd["ratio"] == "inf" and fd["rel_diff"] == 1.0 and fd["component"] == 0
    assert s["missing"] == {"c": ["only_py"], "py": ["only_c"]}
    assert s["keys_compared"] == 3
    assert s["first_chain_divergence"]["key"] == "omega_pixel"
    assert s["first_chain_divergence"]["ratio"] == 2.0
    factors = {f["key"]: f for f in s["chain"]["factors"]}
    assert factors["omega_pixel"] == {
        "key": "omega_pixel", "c": 1.0, "py": 2.0, "ratio": 2.0, "rel_diff": 0.5, "matches": False
    }
    assert factors["steps"]["c"] is None
    assert set(s["chain"]["consistency"]) == {"c", "py"}
    assert s["chain"]["consistency"]["c"]["consistent"] is None
    assert "I_pixel_final" in s["chain"]["consistency"]["c"]["missing"]


def test_summary_json_without_divergence():
    t = make_trace([("a", [1.0])])
    s = summary_json(compare_traces(t, t, "cpu", "gpu"))
    assert s["first_divergence"] is None and s["first_chain_divergence"] is None
    assert s["missing"] == {"cpu": [], "gpu": []}


@pytest.mark.parametrize(
    "x, out", [(None, None), (1.5, 1.5), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_json_float(x, out):
    assert json_float(x) == out
