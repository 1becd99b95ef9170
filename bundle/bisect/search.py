"""k-way bisection over an ordered commit list (pure).

Index 0 is known good and index n-1 known bad (checked by probing them first). The open range is
(last good below the first bad, first bad]: the first bad commit is somewhere in it. Each round
probes up to k untested commits inside it, placed to split it into k+1 equal parts, so one round
shrinks it about k+1 times (one worker: plain bisection, ⌈log2 N⌉ probes). A commit that cannot
be tested (``skip``, git bisect run's exit 125) narrows nothing; the commit nearest the ideal
split that is still untested is taken instead, so a skip's neighbours are tried next. When only
skipped commits are left between the last good and the first bad, the answer is that range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

Value = Literal["good", "bad", "skip"]


@dataclass(frozen=True)
class Answer:
    """The first bad commit's index, or (when skips hide it) the candidates: every index of
    ``candidates`` could be the first bad one (the last is known bad)."""

    first_bad: int | None
    candidates: tuple[int, ...]
    skipped: tuple[int, ...]  # the skipped indices among the candidates

    @property
    def ambiguous(self) -> bool:
        return self.first_bad is None


def open_range(n: int, results: Mapping[int, Value]) -> tuple[int, int]:
    """(lo, hi): lo the last good index below hi, hi the first bad index (n-1 when none known)."""
    bad = [i for i, v in results.items() if v == "bad"]
    hi = min(bad) if bad else n - 1
    good = [i for i, v in results.items() if v == "good" and i < hi]
    lo = max(good) if good else 0
    return lo, hi


def untested(n: int, results: Mapping[int, Value]) -> list[int]:
    lo, hi = open_range(n, results)
    return [i for i in range(lo + 1, hi) if i not in results]


def next_probes(n: int, results: Mapping[int, Value], k: int) -> list[int]:
    """Up to k untested indices in the open range, spread to split it into k+1 equal parts;
    an empty list when the search is over."""
    free = untested(n, results)
    if not free:
        return []
    lo, hi = open_range(n, results)
    picks: list[int] = []
    for j in range(1, k + 1):
        if len(picks) == len(free):
            break
        ideal = lo + (hi - lo) * j / (k + 1)
        # nearest free index to the ideal split; ties go to the lower one (floor midpoint)
        best = min((i for i in free if i not in picks), key=lambda i: (abs(i - ideal), i))
        picks.append(best)
    return sorted(picks)


def answer(n: int, results: Mapping[int, Value]) -> Answer | None:
    """The answer once nothing is left to probe, else None."""
    if untested(n, results):
        return None
    lo, hi = open_range(n, results)
    candidates = tuple(range(lo + 1, hi + 1))
    skipped = tuple(i for i in candidates if results.get(i) == "skip")
    if len(candidates) == 1:
        return Answer(first_bad=hi, candidates=candidates, skipped=())
    return Answer(first_bad=None, candidates=candidates, skipped=skipped)
