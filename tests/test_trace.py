"""Trace parsing: %.15g round trips, free lines, CRLF/CR, undecodable bytes, streaming."""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundle.model.errors import TraceError
from bundle.analysis.trace import detect_prefix, parse_file, parse_lines, parse_number

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
KEYS = st.sampled_from(
    ["pix0_vector_meters", "omega_pixel_sr", "hkl_frac", "F_cell", "I_before_scaling", "steps", "polar", "k_1"]
)
# Lines a real log mixes with the trace (nanobragg-facts.md §1, §5).
NOISE = [
    "minibragg C engine",
    "  10% done",
    "100% done",
    "WARNING: auto-generating odet_vector",
    "TRACE: Omega = 1.2e-08",
    "TRACE_CONFIG: tracing pixel (spixel=1039, fpixel=685)",
    "TRACE_C: tracing pixel (spixel=1039, fpixel=685)",
    "TRACE_C: lonely_key",
    "TRACE_C:glued 1.0",
    "TRACE_PY: F_cell 1.5",
    "max_I = 446.12 at slow 1039 fast 685",
    "mean= 0.1 rms= 0.2 rmsd= 0.3",
    "",
    "   ",
]


def fmt(x: float) -> str:
    return "%.15g" % x


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


# --------------------------------------------------------------------------- numbers


@given(ANY_FLOAT)
def test_g15_round_trips_exactly(x):
    token = fmt(x)
    trace = parse_lines([f"TRACE_C: F_cell {token}"], "TRACE_C:")
    (entry,) = trace.entries
    assert entry.tokens == (token,)
    assert not entry.unparsed
    assert same_float(entry.values[0], float(token))  # exactly what C printed, sign of 0 included
    if math.isfinite(entry.values[0]) or not math.isfinite(x):
        # (near DBL_MAX, %.15g rounds up past it and the printed text itself means inf, as strtod says)
        assert fmt(entry.values[0]) == token


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_d_integers_parse_exactly_and_are_flagged(n):
    trace = parse_lines([f"TRACE_C: hkl_rounded {n} 0 -3"], "TRACE_C")
    (entry,) = trace.entries
    assert entry.values == (float(n), 0.0, -3.0)
    assert entry.is_int == (True, True, True)


@pytest.mark.parametrize(
    "token, check",
    [
        ("nan", math.isnan),
        ("-nan", math.isnan),
        ("NaN", math.isnan),
        ("-nan(ind)", math.isnan),
        ("inf", lambda v: v == math.inf),
        ("-inf", lambda v: v == -math.inf),
        ("Infinity", lambda v: v == math.inf),
        ("-Infinity", lambda v: v == -math.inf),
        ("-0", lambda v: v == 0 and math.copysign(1, v) < 0),
        ("1e+24", lambda v: v == 1e24),
        ("7.94079248018965e-30", lambda v: v == 7.94079248018965e-30),
        (".5", lambda v: v == 0.5),
    ],
)
def test_special_tokens(token, check):
    v = parse_number(token)
    assert v is not None and check(v)


@pytest.mark.parametrize("token", ["1_000", "0x10", "1.5.2", "nanx", "١٢", "1e", "--1", "", "1,"])
def test_not_numbers(token):
    assert parse_number(token) is None


def test_is_int_only_for_plain_integers():
    (e,) = parse_lines(["TRACE_C: v 1 1.0 1e3 -0 nan"], "TRACE_C:").entries
    assert e.is_int == (True, False, False, True, False)


# --------------------------------------------------------------------------- key lines


def test_prefix_with_or_without_colon():
    lines = ["TRACE_C: a 1", "TRACE_C: b 2 3 4"]
    assert parse_lines(lines, "TRACE_C") == parse_lines(lines, "TRACE_C:")
    assert parse_lines(lines, "TRACE_C").prefix == "TRACE_C:"


def test_duplicates_get_occurrences_and_positions():
    t = parse_lines(["TRACE_C: a 1", "junk", "TRACE_C: b 2", "TRACE_C: a 3", "TRACE_C: a 4"], "TRACE_C:")
    assert [(e.key, e.occurrence, e.position, e.line_no) for e in t.entries] == [
        ("a", 0, 0, 1),
        ("b", 0, 1, 3),
        ("a", 1, 2, 4),
        ("a", 2, 3, 5),
    ]
    assert t.keys() == ("a", "b")


def test_mixed_tokens_make_an_unparsed_entry_never_a_zero():
    (e,) = parse_lines(["TRACE_C: F_cell 1.5 oops 2"], "TRACE_C:").entries
    assert e.unparsed
    assert e.values == ()
    assert e.tokens == ("1.5", "oops", "2")


@pytest.mark.parametrize("line", NOISE)
def test_noise_lines_are_free_lines(line):
    t = parse_lines(["TRACE_C: a 1", line], "TRACE_C:")
    assert len(t.entries) == 1
    assert t.free_lines == 1
    assert t.lines_read == 2


def test_leading_whitespace_and_tabs_are_tolerated():
    (e,) = parse_lines(["  TRACE_C:\tomega_pixel \t 1.5e-08  "], "TRACE_C:").entries
    assert (e.key, e.values) == ("omega_pixel", (1.5e-08,))


def test_no_key_lines_raises_naming_the_source_and_prefix():
    with pytest.raises(TraceError, match=r"^run\.log: no trace lines with prefix TRACE_C:$"):
        parse_lines(["TRACE_PY: a 1", "banner"], "TRACE_C", source="run.log")


def test_bytes_crlf_and_cr_items():
    t = parse_lines([b"TRACE_C: a 1\r\n", b" 10% done\r 20% done\rTRACE_C: b 2\r\n", "TRACE_C: c 3\r"], "TRACE_C")
    assert [(e.key, e.values) for e in t.entries] == [("a", (1.0,)), ("b", (2.0,)), ("c", (3.0,))]
    assert t.lines_read == 5 and t.free_lines == 2


def test_undecodable_bytes_survive():
    t = parse_lines([b"\xff\xfe banner \x80\n", b"TRACE_C: a 1 \xff2\n", b"TRACE_C: b 2\n"], "TRACE_C:")
    a, b = t.entries
    assert a.unparsed and a.tokens == ("1", "\ufffd2")
    assert b.values == (2.0,)
    assert t.free_lines == 1


# --------------------------------------------------------------------------- files


key_lines = st.lists(
    st.tuples(KEYS, st.lists(ANY_FLOAT, min_size=1, max_size=3)), min_size=1, max_size=15
)
noise_bytes = st.one_of(
    st.sampled_from([n.encode() for n in NOISE]),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
)


@settings(max_examples=60, deadline=None)
@given(
    keys=key_lines,
    noise=st.lists(noise_bytes, max_size=20),
    seed=st.randoms(use_true_random=False),
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_file_with_noise_and_any_line_ending(tmp_path_factory, keys, noise, seed, ending):
    noise = [
        n for n in noise
        if (n.decode("utf-8", "replace").split() or [""])[0] != "TRACE_C:"
    ]
    lines = [(("key", k, vs), f"TRACE_C: {k} {' '.join(fmt(v) for v in vs)}".encode()) for k, vs in keys]
    lines += [(("noise",), n) for n in noise]
    seed.shuffle(lines)
    keys = [kind[1:] for kind, _ in lines if kind[0] == "key"]
    path = tmp_path_factory.mktemp("log") / "run.log"
    path.write_bytes(b"".join(text + ending for _, text in lines))

    t = parse_file(path, "TRACE_C:")
    assert t.lines_read == len(lines)
    assert t.free_lines == len(noise)
    expected = [(k, [fmt(v) for v in vs]) for k, vs in keys]
    assert [(e.key, list(e.tokens)) for e in t.entries] == expected
    for e, (_, vs) in zip(t.entries, keys):
        assert all(same_float(a, float(fmt(b))) for a, b in zip(e.values, vs))
    line_nos = [i + 1 for i, (kind, _) in enumerate(lines) if kind[0] == "key"]
    assert [e.line_no for e in t.entries] == line_nos


def test_parse_file_detects_the_prefix(tmp_path):
    log = tmp_path / "py.log"
    log.write_text(
        "TRACE_CONFIG: tracing pixel (spixel=1, fpixel=2)\n"
        "TRACE_CONFIG: tracing pixel (spixel=1, fpixel=2)\n"
        "TRACE_CONFIG: tracing pixel (spixel=1, fpixel=2)\n"
        "TRACE_PY: a 1\nTRACE_PY: b 2\nTRACE_OTHER: a 1\n"
    )
    assert detect_prefix(log) == "TRACE_PY:"
    t = parse_file(log)
    assert t.prefix == "TRACE_PY:" and t.keys() == ("a", "b")


def test_file_without_trace(tmp_path):
    log = tmp_path / "c.log"
    log.write_text("banner\n 10% done\nTRACE: free text 1\n")
    assert detect_prefix(log) is None
    with pytest.raises(TraceError, match="c.log: no trace lines with prefix TRACE_C:"):
        parse_file(log, "TRACE_C")
    with pytest.raises(TraceError, match="c.log"):
        parse_file(log)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(TraceError, match="nope.log"):
        parse_file(tmp_path / "nope.log", "TRACE_C:")
    with pytest.raises(TraceError, match="nope.log"):
        detect_prefix(tmp_path / "nope.log")


def test_big_log_is_streamed(tmp_path):
    """~50 MB of progress lines around a trace: memory stays small while parsing."""
    path = tmp_path / "big.log"
    # Each block: progress lines and long statistics/warning lines, as a real log mixes them.
    lines = [f"  {i}% done\n" if i % 4 == 0 else "WARNING: " + "x" * 250 + f" {i}\n" for i in range(1000)]
    block = "".join(lines)
    n_blocks = 260
    with open(path, "w", newline="") as fh:
        fh.write("minibragg C engine\r\n")
        for b in range(n_blocks):
            fh.write(block)
            fh.write(f"TRACE_C: pixel_pos_meters {fmt(b * 0.1)} {fmt(-b / 3)} 1e-30\r\n")
    size = path.stat().st_size
    assert size > 50_000_000

    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        t = parse_file(path, "TRACE_C:")
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(t.entries) == n_blocks
    assert t.entries[-1].occurrence == n_blocks - 1
    assert t.lines_read == 1 + n_blocks * 1001
    assert peak < 4_000_000, f"peak {peak} bytes while parsing {size} bytes"
    print(f"parsed {size / 1e6:.0f} MB in {elapsed:.2f} s (under tracemalloc), peak {peak / 1e6:.2f} MB")
