"""The diff as Markdown, written to be pasted into a fix_plan attempt: no level-1/2 headings and
no code fences (the ledger's parser reads those as structure), bold labels and tables only.
Pure: ``markdown(diff) -> str``."""

from __future__ import annotations

from typing import Any

from bundle.diff.model import BundleDiff, KeyChange, KeyState, SuiteDiff, ValuePair
from bundle.diff.words import (INPUTS_CHANGED, NOT_REPRODUCIBLE, NOTHING_CHANGED, NOTHING_REGRESSED,
                               ONLY_AFTER, ONLY_BEFORE, SAME_INPUTS, UNCHANGED, digest_short,
                               regression_line, status_mark)
from bundle.present.vocabulary import DASH, fmt_ratio, fmt_short, mark, plural


def _v(x: Any) -> str:
    if x is None:
        return DASH
    if isinstance(x, float):
        return fmt_short(x)
    if isinstance(x, (tuple, list)):
        return ", ".join(map(str, x)) or DASH
    return str(x)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _key_number(s: KeyState | None) -> str:
    if s is None:
        return DASH
    if s.ratio is not None:
        return fmt_ratio(s.ratio)
    return DASH if s.rel_diff is None else f"rel {fmt_short(s.rel_diff)}"


def _key_rows(keys: tuple[KeyChange, ...], all_keys: bool) -> list[str]:
    shown = [k for k in keys if all_keys or k.transition != UNCHANGED or k.before != k.after]
    rows = ["| key | before | after | transition | ratio before | ratio after |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {k.key} | {status_mark(k.before.ok if k.before else None)} | "
             f"{status_mark(k.after.ok if k.after else None)} | {k.transition} | "
             f"{_key_number(k.before)} | {_key_number(k.after)} |" for k in shown]
    hidden = len(keys) - len(shown)
    tail = [f"{plural(hidden, 'more key')} unchanged."] if hidden else []
    return (rows if shown else []) + tail


def _pairs(title: str, pairs: tuple[ValuePair, ...], ratio: bool = False) -> list[str]:
    if not pairs:
        return []
    fmt = fmt_ratio if ratio else _v
    rows = [f"**{title}**", "", "| | before | after | pass line | pass |", "|---|---|---|---|---|"]
    rows += [f"| {p.name} | {fmt(p.before) if p.before is not None else DASH} | "
             f"{fmt(p.after) if p.after is not None else DASH} | {_cell(p.line) or DASH} | "
             f"{mark(p.passed_before)} → {mark(p.passed_after)} |" for p in pairs]
    return rows + [""]


def _changes(diff: BundleDiff) -> list[str]:
    lines = [f"**{INPUTS_CHANGED}**", ""]
    if not diff.inputs_changed:
        return lines + [f"{SAME_INPUTS}.", ""]
    if diff.changes:
        lines += ["| what | item | before | after |", "|---|---|---|---|"]
        lines += [f"| {c.category} | {_cell(c.name)} | {_cell(_short(c.before))} | "
                  f"{_cell(_short(c.after))} |" for c in diff.changes]
        lines.append("")
    if diff.arguments:
        tokens = "; ".join(f"{t.op} `{t.token}` at {t.position}" for t in diff.arguments)
        lines += [f"shared argument list: {tokens}.", ""]
    return lines


def _short(value: str | None) -> str:
    """A sha256 as its first 12 digits, a value as it is (cut at 60 characters)."""
    if value and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return digest_short(value)
    if value is None:
        return DASH
    return value if len(value) <= 60 else value[:59] + "…"


def summary_lines(diff: BundleDiff | SuiteDiff) -> list[str]:
    lines = [regression_line(r.name, r.before, r.after) for r in diff.regressions]
    if not lines:
        lines = [NOTHING_REGRESSED]
    if isinstance(diff, BundleDiff):
        if diff.not_reproducible:
            lines.append(NOT_REPRODUCIBLE)
        elif not diff.inputs_changed and not diff.results_changed:
            lines.append(NOTHING_CHANGED)
    return lines


def bundle_markdown(diff: BundleDiff, all_keys: bool = True) -> str:
    counts = {}
    for k in diff.keys:
        counts[k.transition] = counts.get(k.transition, 0) + 1
    head = [f"**diff** `{diff.before_id}` → `{diff.after_id}`: "
            + ", ".join(f"{n} {t}" for t, n in counts.items()) + ".", ""]
    head += [f"- {line}" for line in summary_lines(diff)] + [""]
    v, fd, roots = diff.verdict, diff.first_divergence, diff.roots
    head += [f"verdict: {_v(v.before)} → {_v(v.after)}; first divergence: {_v(fd.before)} → "
             f"{_v(fd.after)}; roots: {_v(roots.before)} → {_v(roots.after)}.", ""]
    body = _changes(diff) + ["**keys**", "", *_key_rows(diff.keys, all_keys), ""]
    body += _pairs("chain factors (ratio)", diff.factors, ratio=True)
    body += _pairs("image metrics", diff.metrics)
    return "\n".join(head + body).rstrip("\n") + "\n"


def suite_markdown(diff: SuiteDiff) -> str:
    lines = [f"**suite diff** `{diff.before_id}` → `{diff.after_id}`: {plural(len(diff.runs), 'run')} "
             "in both.", ""]
    lines += [f"- {line}" for line in summary_lines(diff)] + [""]
    lines += ["| run | status | first divergence | roots | metrics that moved |", "|---|---|---|---|---|"]
    for r in diff.runs:
        moved = "; ".join(f"{m.name} {_v(m.before)} → {_v(m.after)}" for m in r.metrics if m.changed)
        lines.append(f"| {r.id} | {r.status.before} → {r.status.after} | {_v(r.first_divergence.before)}"
                     f" → {_v(r.first_divergence.after)} | {_v(r.roots.before)} → {_v(r.roots.after)}"
                     f" | {_cell(moved) or DASH} |")
    for label, ids in ((ONLY_BEFORE, diff.only_before), (ONLY_AFTER, diff.only_after)):
        if ids:
            lines += ["", f"{label}: " + ", ".join(ids) + "."]
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown(diff: BundleDiff | SuiteDiff, all_keys: bool = True) -> str:
    """The diff in Markdown; ``all_keys`` False lists only the keys that moved (the ledger's)."""
    if isinstance(diff, SuiteDiff):
        return suite_markdown(diff)
    return bundle_markdown(diff, all_keys)
