"""The records a capture produces: typed, immutable, and the only shapes the rest of the code shares.

Every module that parses, compares, renders or writes speaks in these dataclasses. They are
frozen so that a record, once made, is the record: nothing downstream edits evidence in place.
The bundle's on-disk format version lives here too, next to the shapes it versions.

Engine names (``"c"``, ``"py"``, or anything a target profile declares) are plain strings: no
record assumes there are exactly two engines. A comparison is always between a *reference* engine
and a *candidate* engine; for the built-in targets those are ``c`` and ``py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

FORMAT_VERSION = 1

# Verdicts, in the words the CLI's --json and the report use.
Verdict = Literal["parity", "divergence", "incomplete"]
# Row status of one aligned (key, occurrence, component) value pair.
RowStatus = Literal["match", "differ", "missing_ref", "missing_cand", "unparsed"]


# --------------------------------------------------------------------------- files and commands


@dataclass(frozen=True)
class FileDigest:
    """One file we read or wrote: where (relative to its root), how big, and its sha256."""

    path: str
    size: int
    sha256: str
    root: str = "bundle"  # "bundle" | "repo" | "scratch:<engine>" | "input" | "absolute"


@dataclass(frozen=True)
class CommandRecord:
    """Everything we know about one command we ran, success or failure.

    ``exit_code`` is None when the program could not be started (``error`` says why) or was
    killed by our timeout (``timed_out`` is then True). ``env`` holds only allow-listed variables.
    """

    step: str  # unique within a capture: "build-c", "run-c", "run-py", ...
    role: str  # "prepare" | "build" | "run"
    engine: str | None
    argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...]
    start_utc: str
    end_utc: str
    wall_s: float
    exit_code: int | None
    timed_out: bool = False
    error: str | None = None
    peak_rss_kb: int | None = None
    stdout: FileDigest | None = None
    stderr: FileDigest | None = None
    inputs: tuple[FileDigest, ...] = ()
    outputs: tuple[FileDigest, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True)
class TraceEntry:
    """One key line of a trace: ``PREFIX key v1 [v2 v3]``.

    ``occurrence`` counts earlier lines with the same key (0 for the first). ``position`` is the
    index of this entry among the trace's key lines. ``tokens`` keeps the text exactly as printed;
    ``values`` holds the parsed floats (nan/inf/-0 included). When a token does not parse,
    ``unparsed`` is True and ``values`` is empty: an explicit finding, never a silent 0.
    """

    key: str
    occurrence: int
    position: int
    line_no: int
    tokens: tuple[str, ...]
    values: tuple[float, ...]
    is_int: tuple[bool, ...]
    unparsed: bool = False


@dataclass(frozen=True)
class Trace:
    """All key lines one engine printed with one prefix, in order, plus what was skipped."""

    prefix: str
    entries: tuple[TraceEntry, ...]
    lines_read: int = 0
    free_lines: int = 0  # lines that were not key lines with this prefix (banners, progress, TRACE:)
    truncated: int = 0  # key lines past the kept bound (bundle.analysis.trace): counted, not compared

    def keys(self) -> tuple[str, ...]:
        """Distinct keys in first-appearance order."""
        seen: dict[str, None] = {}
        for e in self.entries:
            seen.setdefault(e.key, None)
        return tuple(seen)


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Tolerance:
    """|cand - ref| <= atol, or rel_diff <= rtol, where rel_diff = |cand-ref| / max(|ref|,|cand|)."""

    rtol: float = 1e-6
    atol: float = 0.0


@dataclass(frozen=True)
class ComparisonRow:
    """One aligned value pair. ``ref``/``cand`` are None where that side lacks the value."""

    key: str
    occurrence: int
    component: int
    position: int  # order in the reference trace (then candidate-only keys after it)
    ref: float | None
    cand: float | None
    abs_diff: float | None
    rel_diff: float | None
    ratio: float | None  # cand / ref (inf or nan where ref == 0)
    rtol: float
    atol: float
    status: RowStatus

    @property
    def matches(self) -> bool:
        return self.status == "match"


@dataclass(frozen=True)
class ChainFactor:
    """One normalization-chain factor in both engines (values are component 0, occurrence 0)."""

    key: str
    ref: float | None
    cand: float | None
    ratio: float | None
    rel_diff: float | None
    matches: bool


@dataclass(frozen=True)
class Consistency:
    """Does one engine's own chain compose to its own final value?

    product = I_before_scaling / steps * r_e_sqr * fluence * capture_fraction * polar * omega_pixel
    ratio = final / product; consistent when |final - product| / max(|final|,|product|) <= 1e-6.
    ``missing`` names chain keys this engine did not print (then product is None).
    """

    engine: str
    product: float | None
    final: float | None
    ratio: float | None
    consistent: bool | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChainReport:
    factors: tuple[ChainFactor, ...]
    first_divergence: ChainFactor | None
    product_of_ratios: float | None  # product over the scaling factors of cand/ref (steps inverted)
    final_ratio: float | None  # I_pixel_final cand / ref
    consistency: Mapping[str, Consistency]  # engine name -> its self-consistency


@dataclass(frozen=True)
class Comparison:
    """The whole key-by-key comparison of a candidate trace against a reference trace."""

    ref_engine: str
    cand_engine: str
    rows: tuple[ComparisonRow, ...]
    first_divergence: ComparisonRow | None
    missing: Mapping[str, tuple[str, ...]]  # engine name -> keys the OTHER side has and it lacks
    keys_compared: int  # distinct keys present on both sides
    chain: ChainReport


# --------------------------------------------------------------------------- roots on the key graph

KeyClassName = Literal["match", "root", "amplified", "carried", "missing"]


@dataclass(frozen=True)
class KeyGraph:
    """What each trace key is computed from (its parents), in pipeline order.

    ``keys`` is the schema the graph speaks about; ``parents`` maps a key to the keys it is
    computed from (a key without an entry has no traced parent). ``amplification`` is A: a key
    whose divergence is at least A times its worst parent's counts as amplified, not carried.
    """

    keys: tuple[str, ...]
    parents: Mapping[str, tuple[str, ...]]
    amplification: float = 1000.0
    source: str = ""

    def edges(self) -> tuple[tuple[str, str], ...]:
        """(parent, child) pairs in the order of ``keys``."""
        return tuple((p, k) for k in self.keys for p in self.parents.get(k, ()))


@dataclass(frozen=True)
class KeyClass:
    """One key's class on the graph and the evidence for it (its worst row).

    ``divergence`` is |log10 ratio| of the worst row, or its rel diff where a ratio has no
    meaning (a zero, a sign flip, nan or inf). ``min_rtol`` is the smallest rtol at which every
    row of the key would match (None when no rtol can: a value is missing or unparsed).
    """

    key: str
    klass: KeyClassName
    component: int
    ref: float | None
    cand: float | None
    ratio: float | None
    rel_diff: float | None
    divergence: float | None
    min_rtol: float | None
    parents: tuple[str, ...] = ()
    worst_parent: str | None = None
    factor: float | None = None  # divergence / worst parent's divergence
    causes: tuple[str, ...] = ()  # carried: the roots / amplified keys it descends from
    explains: tuple[str, ...] = ()  # root / amplified: the carried keys it explains


@dataclass(frozen=True)
class ChainAttribution:
    """How much of the I_pixel_final ratio the differing chain factors explain.

    explained_ratio = product of the differing factors' cand/ref ratios (steps inverted);
    residual = final_ratio / explained_ratio; ``unexplained`` when the residual is beyond the
    final key's tolerance: part of the final difference comes from no printed factor.
    """

    explained_by: tuple[str, ...]
    explained_ratio: float | None
    final_ratio: float | None
    residual: float | None
    unexplained: bool


@dataclass(frozen=True)
class RootsReport:
    """The independent divergences of a comparison: every key classified on the key graph."""

    keys: tuple[KeyClass, ...]  # pipeline order
    edges: tuple[tuple[str, str], ...]  # (parent, child) of the graph, for the keys compared
    graph_given: bool
    graph_source: str
    amplification: float
    attribution: ChainAttribution | None

    def of(self, klass: str) -> tuple[KeyClass, ...]:
        return tuple(k for k in self.keys if k.klass == klass)


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class EngineImageStats:
    engine: str
    total: float
    mean: float
    max: float
    max_slow: int
    max_fast: int
    traced_value: float | None  # value at the traced pixel, when one was traced


@dataclass(frozen=True)
class ImageMetrics:
    """How the users judge image parity (nanobragg-facts.md §6)."""

    ref_engine: str
    cand_engine: str
    slow: int
    fast: int
    ref: EngineImageStats
    cand: EngineImageStats
    sum_ratio: float  # cand total / ref total
    rmse: float
    pearson: float
    peaks_ref: int
    peaks_cand: int
    peaks_matched: int
    mean_peak_distance: float | None  # pixels, over matched peaks
    correlation_pass: bool  # pearson >= 0.999
    peak_distance_pass: bool | None  # mean distance <= 1 px (None when no peaks)
    max_abs_diff: float = float("nan")  # max |cand - ref| over the image (nan when a pixel is)


# --------------------------------------------------------------------------- the capture


@dataclass(frozen=True)
class EngineRun:
    """What one engine produced in a capture."""

    engine: str
    prefix: str
    trace: Trace | None  # None when the run produced no readable log
    image_path: str | None  # bundle-relative path of its float image, when produced and kept
    failed_steps: tuple[str, ...] = ()  # CommandRecord.step of failed commands for this engine


@dataclass(frozen=True)
class CaptureResult:
    """Everything a capture found; renderers (report, tables, crate, JSON) read only this."""

    bundle_id: str
    status: Literal["complete", "partial"]
    verdict: Verdict
    spec: Mapping  # the spec as loaded (plain data), for the manifest and report
    target: str
    pixel: tuple[int, int] | None  # (slow, fast)
    engines: tuple[EngineRun, ...]
    comparison: Comparison | None  # None when nothing could be compared
    metrics: ImageMetrics | None
    commands: tuple[CommandRecord, ...]
    environment: Mapping  # host, os, cpu, versions, git state, container
    notes: tuple[str, ...] = ()  # what is missing, which commands failed
    reproduce: str = ""  # the one command line that re-runs this bundle
    created_utc: str = ""
    extra: Mapping = field(default_factory=dict)
    roots: RootsReport | None = None  # the key-graph classification, when there was a comparison
