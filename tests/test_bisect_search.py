"""k-way bisection (bundle/bisect/search.py) and the predicate (bundle/bisect/predicate.py), pure:
random histories, random first bad commits, random skips."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from bundle.bisect.predicate import Predicate, judge
from bundle.bisect.search import answer, next_probes


def _bisect(n: int, first_bad: int, skips: frozenset[int], k: int):
    """Run the search against a history where index >= first_bad is bad; returns (answer,
    interior probes, rounds)."""
    results = {0: "good", n - 1: "bad"}
    probes = rounds = 0
    while True:
        picks = next_probes(n, results, k)
        if not picks:
            return answer(n, results), probes, rounds
        assert len(picks) <= k and len(set(picks)) == len(picks)
        assert all(i not in results for i in picks)
        rounds += 1
        probes += len(picks)
        for i in picks:
            results[i] = "skip" if i in skips else ("bad" if i >= first_bad else "good")


@st.composite
def histories(draw):
    n = draw(st.integers(min_value=2, max_value=200))
    first_bad = draw(st.integers(min_value=1, max_value=n - 1))
    return n, first_bad


@given(histories(), st.integers(min_value=1, max_value=4))
@settings(max_examples=300, deadline=None)
def test_finds_the_first_bad_commit_within_log2_probes(history, k):
    n, first_bad = history
    got, probes, rounds = _bisect(n, first_bad, frozenset(), k)
    assert got.first_bad == first_bad and not got.ambiguous
    # N = n - 1 commits after --good; the two ends are probed first (the "+ 2")
    if k == 1:
        assert probes + 2 <= math.ceil(math.log2(n - 1)) + 2 if n > 2 else probes == 0
    # k probes a round cut the range about k + 1 times
    assert rounds <= math.ceil(math.log(n - 1, k + 1)) + 1 if n > 2 else rounds == 0


@given(histories(), st.data())
@settings(max_examples=300, deadline=None)
def test_skips_give_the_answer_or_a_range_that_holds_it(history, data):
    n, first_bad = history
    interior = list(range(1, n - 1))
    skips = frozenset(data.draw(st.lists(st.sampled_from(interior), unique=True)) if interior
                      else [])
    k = data.draw(st.integers(min_value=1, max_value=3))
    got, _probes, _rounds = _bisect(n, first_bad, skips, k)
    if got.first_bad is not None:
        assert got.first_bad == first_bad
    else:
        assert first_bad in got.candidates
        # every candidate but the last (known bad) was skipped: nothing testable was left out
        assert set(got.candidates[:-1]) <= skips and got.skipped == got.candidates[:-1]
        assert got.candidates == tuple(range(got.candidates[0], got.candidates[-1] + 1))


def test_a_skip_sends_the_next_probe_to_its_neighbour():
    n = 9  # 0 good, 8 bad; the midpoint 4 cannot be tested
    results = {0: "good", 8: "bad"}
    assert next_probes(n, results, 1) == [4]
    results[4] = "skip"
    assert next_probes(n, results, 1) in ([3], [5])


def test_two_workers_take_about_half_the_rounds_of_one():
    one = max(_bisect(33, fb, frozenset(), 1)[2] for fb in range(1, 33))
    two = max(_bisect(33, fb, frozenset(), 2)[2] for fb in range(1, 33))
    three = max(_bisect(33, fb, frozenset(), 3)[2] for fb in range(1, 33))
    assert one == 5 and two == 4 and three == 3  # log2 32, ⌈log3 32⌉, log4 32 (+ the two ends)


_SUMMARY = {"verdict": "divergence", "keys_compared": 40, "failed_commands": [],
            "roots": [{"key": "fluence_photons_per_m2"}]}


def test_predicates_on_a_capture_summary():
    rows = [{"status": "differ", "ratio": 10.0, "rel_diff": 0.9}]
    fine = [{"status": "match", "ratio": 1.0, "rel_diff": 0.0}]
    assert judge(Predicate("verdict"), _SUMMARY).value == "bad"
    assert judge(Predicate("verdict"), {**_SUMMARY, "verdict": "parity"}).value == "good"
    assert judge(Predicate("root", "fluence_photons_per_m2"), _SUMMARY).value == "bad"
    assert judge(Predicate("root", "polar"), _SUMMARY).value == "good"
    got = judge(Predicate("key", "I_pixel_final"), _SUMMARY, rows)
    assert (got.value, got.key_ratio, got.key_rel_diff) == ("bad", 10.0, 0.9)
    assert judge(Predicate("key", "polar"), _SUMMARY, fine).value == "good"
    assert judge(Predicate("key", "nope"), _SUMMARY, []).value == "skip"


def test_a_failed_build_or_no_trace_is_a_skip():
    built_not = {**_SUMMARY, "failed_commands": [{"step": "build-c", "exit_code": 1,
                                                  "timed_out": False, "error": None}]}
    got = judge(Predicate("verdict"), built_not)
    assert got.value == "skip" and "build-c failed" in got.reason
    crashed = {**_SUMMARY, "keys_compared": 0,
               "failed_commands": [{"step": "run-py", "exit_code": 1}]}
    assert judge(Predicate("verdict"), crashed).value == "skip"
    # crashing after tracing is a result, not a skip
    late = {**_SUMMARY, "failed_commands": [{"step": "run-py", "exit_code": 1}]}
    assert judge(Predicate("verdict"), late).value == "bad"
