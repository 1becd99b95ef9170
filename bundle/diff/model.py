"""The diff's records: frozen dataclasses over plain values, each with ``to_data`` for --json.

A BundleDiff is "before" (A) against "after" (B). ``regressions`` names everything that went
from passing to failing: a key (its name), an image metric's pass line (``pearson``,
``mean_peak_distance``) or the verdict (``verdict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bundle.diff.words import REGRESSED


@dataclass(frozen=True)
class KeyState:
    """One key on one side: ok (every component within tolerance), its worst row's ratio and
    relative difference (None where the side holds no table, e.g. a bare manifest)."""

    ok: bool
    ratio: float | None = None
    rel_diff: float | None = None


@dataclass(frozen=True)
class KeyChange:
    key: str
    before: KeyState | None
    after: KeyState | None
    transition: str  # bundle.diff.words.TRANSITIONS


@dataclass(frozen=True)
class ValuePair:
    """A named value before and after (a chain factor's ratio, a metric); ``passed_*`` is its
    pass line's mark where it has one, ``line`` the pass line."""

    name: str
    before: Any
    after: Any
    passed_before: bool | None = None
    passed_after: bool | None = None
    line: str = ""

    @property
    def changed(self) -> bool:
        return self.before != self.after or self.passed_before != self.passed_after

    @property
    def regressed(self) -> bool:
        return self.passed_before is True and self.passed_after is False


@dataclass(frozen=True)
class InputChange:
    """One thing that changed between the runs: its category (words.CATEGORIES), its name, and
    its digest or value before and after (None: absent on that side)."""

    category: str
    name: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class TokenChange:
    """A token of the shared argument list removed (position in A) or added (position in B)."""

    op: str  # "removed" | "added"
    position: int
    token: str


@dataclass(frozen=True)
class Regression:
    name: str  # a key, "pearson", "mean_peak_distance" or "verdict"
    before: str
    after: str


@dataclass(frozen=True)
class BundleDiff:
    before_id: str
    after_id: str
    keys: tuple[KeyChange, ...]
    factors: tuple[ValuePair, ...]
    metrics: tuple[ValuePair, ...]
    verdict: ValuePair
    roots: ValuePair  # tuples of root keys
    first_divergence: ValuePair
    changes: tuple[InputChange, ...]
    arguments: tuple[TokenChange, ...]
    results_changed: bool
    before_is_manifest: bool = False  # A is a bare (archived) manifest: no tables

    @property
    def inputs_changed(self) -> bool:
        return bool(self.changes or self.arguments)

    @property
    def not_reproducible(self) -> bool:
        return self.results_changed and not self.inputs_changed

    @property
    def regressions(self) -> tuple[Regression, ...]:
        out = [Regression(k.key, "✓", "✗") for k in self.keys if k.transition == REGRESSED]
        out += [Regression(m.name, "✓", "✗") for m in self.metrics if m.regressed]
        if self.verdict.regressed:
            out.append(Regression("verdict", str(self.verdict.before), str(self.verdict.after)))
        return tuple(out)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(kind="bundle", regressed=self.regressed, inputs_changed=self.inputs_changed,
                    not_reproducible=self.not_reproducible,
                    regressions=[asdict(r) for r in self.regressions])
        return data


@dataclass(frozen=True)
class RunDiff:
    """One suite run (case/run) in both suites."""

    id: str
    status: ValuePair  # "pass" | "fail" | "error"
    metrics: tuple[ValuePair, ...]
    first_divergence: ValuePair
    roots: ValuePair

    @property
    def regressed(self) -> bool:
        return self.status.before == "pass" and self.status.after != "pass"


@dataclass(frozen=True)
class SuiteDiff:
    before_id: str
    after_id: str
    runs: tuple[RunDiff, ...]
    only_before: tuple[str, ...] = ()
    only_after: tuple[str, ...] = ()

    @property
    def regressions(self) -> tuple[Regression, ...]:
        return tuple(Regression(r.id, str(r.status.before), str(r.status.after))
                     for r in self.runs if r.regressed)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(kind="suite", regressed=self.regressed,
                    regressions=[asdict(r) for r in self.regressions])
        return data


Diff = BundleDiff | SuiteDiff
