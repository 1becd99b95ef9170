"""The suite's records: what a suite file says (Suite, Case, Run, Thresholds) and what running
one run produced (RunOutcome). Plain frozen dataclasses; parsing lives in bundle.suite.source,
judging in bundle.suite.judge, the bundle in bundle.suite.store.

The suite bundle's ``suite.json`` (SUITE_FORMAT_VERSION) is this, as plain JSON::

    {"format_version": 1, "kind": "suite", "suite_id": "<UTC>-suite-<name>-<hash8>",
     "created_utc": "...Z", "name": ..., "target": ...,
     "source": {"path": ..., "sha256": ..., "format": "toml" | "yaml"},
     "executor": {"kind": "local" | "scheduler", "address": ..., "workers": N,
                  "threads_per_run": K},
     "trace": "failing" | "all" | "none",
     "summary": {"runs": N, "passed": P, "failed": F, "errors": E, "reused": R},
     "members": [RunOutcome.to_data(), ...],        # in suite order
     "unknown_fields": {"<case id or case/run>": {...}},  # the YAML's fields we keep and show
     "files": [{"path": ..., "size": ..., "sha256": ...}]}  # every other file of the suite bundle

Members are bundle ids in the same bundles directory as the suite bundle (the suite bundle's
parent): ``bundle`` is the image capture, ``trace_bundle`` the drill-down capture when there is one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

SUITE_FORMAT_VERSION = 1

# The image metrics a threshold may name: threshold name -> (metric key in RunOutcome.metrics,
# "min" | "max"). corr/sum_ratio/max_abs are the upstream YAML's; the rest are what every capture
# already computes (bundle.analysis.metrics).
THRESHOLD_METRICS: Mapping[str, tuple[str, str]] = {
    "corr_min": ("corr", "min"),
    "sum_ratio_min": ("sum_ratio", "min"),
    "sum_ratio_max": ("sum_ratio", "max"),
    "max_abs_max": ("max_abs", "max"),
    "rmse_max": ("rmse", "max"),
    "mean_peak_distance_max": ("mean_peak_distance", "max"),
    "peaks_matched_min": ("peaks_matched", "min"),
}

RunStatus = Literal["pass", "fail", "error"]
TraceMode = Literal["failing", "all", "none"]


@dataclass(frozen=True)
class Thresholds:
    """Threshold name (a key of THRESHOLD_METRICS) -> limit, sorted by name."""

    limits: tuple[tuple[str, float], ...] = ()

    def merged(self, over: "Thresholds") -> "Thresholds":
        """These thresholds with ``over``'s limits replacing or adding to them."""
        out = dict(self.limits)
        out.update(dict(over.limits))
        return Thresholds(tuple(sorted(out.items())))

    def to_data(self) -> dict[str, float]:
        return dict(self.limits)


@dataclass(frozen=True)
class Run:
    """One command line of the matrix: ``args`` is the case's args then the run's, as given
    (the image flag is added when the member spec is made, not here)."""

    case: str
    name: str
    args: tuple[str, ...]
    pixel: tuple[int, int] | None = None  # (slow, fast): the run's own, else the case's
    thresholds: Thresholds = Thresholds()  # suite defaults <- case <- run
    description: str = ""
    unknown: Mapping[str, Any] = field(default_factory=dict)  # YAML fields kept and shown

    @property
    def id(self) -> str:
        return f"{self.case}/{self.name}"


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    runs: tuple[Run, ...]
    unknown: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A parsed suite file. ``spec_defaults`` holds what every member spec shares, as a spec
    TOML would say it (``inputs``, ``tolerance``, ``engines``), in plain data for
    bundle.capture.spec.parse_spec."""

    name: str
    target: str
    source: str  # the file as the user named it
    source_sha256: str
    format: Literal["toml", "yaml"]
    cases: tuple[Case, ...]
    spec_defaults: Mapping[str, Any] = field(default_factory=dict)
    unknown: Mapping[str, Any] = field(default_factory=dict)  # top-level YAML fields kept

    @property
    def runs(self) -> tuple[Run, ...]:
        return tuple(r for c in self.cases for r in c.runs)


@dataclass(frozen=True)
class RunOutcome:
    """What one run came to: the row of suite.parquet and the member entry of suite.json."""

    id: str  # case/run
    case: str
    run: str
    status: RunStatus
    bundle: str | None  # the image member's bundle id (None when nothing was written)
    manifest_sha256: str | None
    run_key: str
    key_fields: Mapping[str, str]  # run-key field -> its sha256 (why a rerun happened)
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # THRESHOLD_METRICS' keys
    thresholds: Mapping[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()  # threshold names that failed
    verdict: str | None = None  # the traced member's verdict; None when untraced
    trace_bundle: str | None = None  # the drill-down member, when it is a second bundle
    trace_manifest_sha256: str | None = None
    first_divergence: str | None = None
    roots: tuple[str, ...] = ()
    pixel: tuple[int, int] | None = None  # the traced pixel
    pixel_reason: str = ""  # "the run's pixel" | "largest |py - c| among bright pixels" | ...
    wall_s: float = 0.0
    peak_rss_kb: int | None = None
    worker: str = ""
    reused: bool = False
    reason: str = ""  # why it was rerun (the first run-key field that changed) or reused
    error: str | None = None  # status "error": one line

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["pixel"] = list(self.pixel) if self.pixel else None
        data["failed"], data["roots"] = list(self.failed), list(self.roots)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "RunOutcome":
        values = dict(data)
        values["pixel"] = tuple(values["pixel"]) if values.get("pixel") else None
        values["failed"] = tuple(values.get("failed") or ())
        values["roots"] = tuple(values.get("roots") or ())
        return cls(**values)


@dataclass(frozen=True)
class SuiteRequest:
    """What ``nb-evidence suite`` asks for (bundle.suite.run.run_suite carries it out)."""

    suite_path: str
    bundles: str = "bundles"
    target: str | None = None  # None: the suite's (TOML) or "nanobragg" (upstream YAML)
    repo: str | None = None  # None: as a capture decides (minibragg: this checkout; else cwd)
    workers: int | None = None
    scheduler: str | None = None
    threads_per_run: int = 1
    resume: bool = False
    only: tuple[str, ...] = ()  # case ids or case/run ids
    trace: TraceMode = "failing"
    timeout: float | None = None  # per command, as capture --timeout


@dataclass(frozen=True)
class SuiteOutcome:
    """run_suite's answer: the suite bundle written and its suite.json data. exit_code: 0 every
    run passes, 1 any run fails (or errors)."""

    path: str
    data: Mapping[str, Any]
    exit_code: int
