"""The bisect predicate: one capture's result -> good, bad or skip (pure).

- ``key KEY``: bad when a comparison row of KEY differs (beyond the spec's tolerance) or only
  one side traced it;
- ``root KEY``: bad when KEY is among the roots (bundle.analysis.roots: a divergence of its own);
- ``verdict``: bad when the verdict is not parity.

``skip`` (git bisect run's exit 125) when the commit cannot be tested: a build step failed, or
nothing was traced to compare (an engine crashed before tracing), or (``--key``) neither engine
traced KEY at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from bundle.bisect.search import Value

Kind = Literal["key", "root", "verdict"]


@dataclass(frozen=True)
class Predicate:
    kind: Kind
    key: str | None = None

    def describe(self) -> str:
        return "--verdict" if self.kind == "verdict" else f"--{self.kind} {self.key}"

    def to_data(self) -> dict:
        return {"kind": self.kind, "key": self.key, "flag": self.describe()}


@dataclass(frozen=True)
class Judged:
    value: Value
    reason: str
    key_ratio: float | None = None  # cand/ref of KEY's worst row (largest relative difference)
    key_rel_diff: float | None = None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # json_float's "nan"/"inf" strings parse too


def untestable(summary: Mapping[str, Any]) -> str | None:
    """Why this capture tells nothing about the commit, or None."""
    for c in summary.get("failed_commands") or ():
        if str(c.get("step", "")).startswith(("build-", "prepare-")):
            how = c.get("error") or f"exit {c.get('exit_code')}"
            return f"{c['step']} failed ({how})"
    if not summary.get("keys_compared"):
        return "nothing traced to compare (an engine failed before tracing)"
    return None


def worst_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """KEY's row with the largest relative difference (a row with none, e.g. one side missing,
    counts as the worst)."""
    if not rows:
        return None
    return max(rows, key=lambda r: (float("inf") if r.get("rel_diff") is None
                                    else abs(_num(r["rel_diff"]) or 0.0)))


def judge(predicate: Predicate, summary: Mapping[str, Any],
          key_rows: Sequence[Mapping[str, Any]] = ()) -> Judged:
    """``summary``: the capture's --json summary (bundle.present.manifest.result_json);
    ``key_rows``: KEY's comparison rows as {"status", "ratio", "rel_diff"} (for --key/--root)."""
    why = untestable(summary)
    worst = worst_row(key_rows)
    ratio = _num(worst.get("ratio")) if worst else None
    rel = _num(worst.get("rel_diff")) if worst else None
    if why is not None:
        return Judged("skip", why, ratio, rel)
    if predicate.kind == "verdict":
        verdict = summary.get("verdict")
        return Judged("good" if verdict == "parity" else "bad", f"verdict {verdict}", ratio, rel)
    if predicate.kind == "root":
        roots = [r.get("key") for r in summary.get("roots") or ()]
        hit = predicate.key in roots
        said = f"{predicate.key} is a root" if hit else f"{predicate.key} is not a root"
        return Judged("bad" if hit else "good", said, ratio, rel)
    if not key_rows:
        return Judged("skip", f"neither engine traced {predicate.key}")
    differs = [r for r in key_rows if r.get("status") != "match"]
    if differs:
        return Judged("bad", f"{predicate.key} {differs[0].get('status')}", ratio, rel)
    return Judged("good", f"{predicate.key} within tolerance", ratio, rel)
