"""The bisect's records: what a caller asks (BisectRequest), what it hears while the search
runs (BisectEvent), and what happened (BisectOutcome, which bundle.bisect.store writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bundle.bisect.git import Commit
from bundle.bisect.predicate import Predicate
from bundle.bisect.probe import ProbeResult
from bundle.bisect.search import Answer


@dataclass(frozen=True)
class BisectRequest:
    spec: Path
    repo: Path
    good: str
    bad: str
    predicate: Predicate
    bundles: Path = Path("bundles")
    target: str | None = None
    workers: int | None = 1
    scheduler: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class BisectEvent:
    kind: str  # "note" | "round" | "probe"
    message: str
    left: int | None = None  # commits still in the open range
    probed: int | None = None  # commits probed so far


@dataclass
class BisectOutcome:
    """What happened; ``status``: found | ambiguous | good-is-bad | bad-is-good."""

    request: BisectRequest
    repo: Path
    good_sha: str
    bad_sha: str
    commits: list[Commit]
    spec_name: str = ""
    probes: list[ProbeResult] = field(default_factory=list)
    rounds: int = 0
    status: str = ""
    reason: str = ""
    answer: Answer | None = None
    last_good: int | None = None  # index of the last good commit below the first bad one
    first_bad: int | None = None  # index of the first commit known bad
    first_bad_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    executor: dict = field(default_factory=dict)
    bundle: Path | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "found" else 1

    def by_sha(self) -> dict[str, ProbeResult]:
        return {p.sha: p for p in self.probes}
