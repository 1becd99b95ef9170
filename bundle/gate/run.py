"""``run_gate``: choose, capture (or run the suite) on the current checkout, diff baseline ->
new, and judge: a regression fails the gate unless ``allow`` names it (a key, a metric name
or ``verdict``; a verdict that regressed only because of allowed regressions is allowed too).
Returns data; the CLI prints and writes the step summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from bundle.diff.load import diff_paths, kind_of, load_suite
from bundle.diff.markdown import markdown
from bundle.diff.model import BundleDiff, Regression, SuiteDiff
from bundle.diff.words import regression_line
from bundle.gate.choose import Choice, choose
from bundle.store.schema import load_manifest


@dataclass(frozen=True)
class GateRequest:
    baseline: str
    capture: str | None = None
    suite: str | None = None
    repo: str | None = None
    allow: tuple[str, ...] = ()
    bundles: str = "bundles"


@dataclass(frozen=True)
class GateOutcome:
    baseline: str
    bundle: str  # the new bundle (or suite bundle)
    chose: str  # which spec or suite, and why
    diff: BundleDiff | SuiteDiff
    failing: tuple[Regression, ...]
    allowed: tuple[Regression, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def lines(self) -> list[str]:
        return [regression_line(r.name, r.before, r.after) for r in self.failing]

    def summary_markdown(self) -> str:
        word = "FAIL" if self.failing else "PASS"
        out = [f"### nb-evidence gate: {word}", "", f"- baseline: `{self.baseline}`",
               f"- new: `{self.bundle}`", f"- {self.chose}"]
        out += [f"- {line}" for line in self.lines()]
        out += [f"- allowed ({r.name}): {r.before} → {r.after}" for r in self.allowed]
        return "\n".join(out) + "\n\n" + markdown(self.diff, all_keys=False) + "\n"


def split_allowed(regressions: tuple[Regression, ...], allow: tuple[str, ...]) -> tuple[tuple, tuple]:
    """(failing, allowed). The verdict is allowed when named or when every other regression is."""
    named = set(allow)
    others = [r for r in regressions if r.name != "verdict"]
    others_allowed = bool(others) and all(r.name in named for r in others)
    failing, allowed = [], []
    for r in regressions:
        ok = r.name in named or (r.name == "verdict" and others_allowed)
        (allowed if ok else failing).append(r)
    return tuple(failing), tuple(allowed)


def _baseline(path: Path) -> tuple[str, Mapping[str, Any]]:
    kind = kind_of(path)
    return kind, (load_suite(path) if kind == "suite" else load_manifest(path))


def _run(choice: Choice, request: GateRequest) -> str:
    """Capture (or run the suite); the new bundle's path."""
    repo = Path(request.repo) if request.repo else None
    if choice.kind == "suite":
        from bundle.suite.model import SuiteRequest
        from bundle.suite.run import run_suite

        return run_suite(SuiteRequest(str(choice.path), bundles=request.bundles,
                                      repo=request.repo)).path
    if choice.kind == "spec-file":
        from bundle.capture.request import make_request
        from bundle.pipeline import execute

        outcome = execute(make_request(choice.path, repo=repo, bundles=Path(request.bundles)))
        return outcome.summary["bundle"]
    return _capture_recorded(choice.manifest or {}, repo, Path(request.bundles))


def _capture_recorded(manifest: Mapping[str, Any], repo: Path | None, bundles: Path) -> str:
    from bundle.capture.options import CaptureOptions
    from bundle.capture.spec import recorded_spec
    from bundle.capture.target import load_target
    from bundle.pipeline import capture

    spec = recorded_spec(manifest["spec"], source=f"{manifest.get('bundle_id')}:spec")
    target = load_target(manifest["target"]["name"])  # the built-in profile, never the copy
    chosen = repo or Path(manifest["target"]["repo"])
    _result, path = capture(spec, target, CaptureOptions(repo=chosen.resolve(), bundles=bundles))
    return str(path)


def run_gate(request: GateRequest) -> GateOutcome:
    baseline = Path(request.baseline)
    kind, data = _baseline(baseline)
    if kind != "suite" and kind_of(baseline) == "bundle":
        from bundle.store.verify import require_intact

        require_intact(baseline)  # before anything runs
    choice = choose(kind, data, request.capture, request.suite,
                    Path(request.repo) if request.repo else None)
    new = _run(choice, request)
    result = diff_paths(baseline, new)
    failing, allowed = split_allowed(result.regressions, request.allow)
    return GateOutcome(str(baseline), new, choice.why, result, failing, allowed)
