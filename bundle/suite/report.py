"""A suite bundle's ``report.md``: title, summary line, the matrix (one row per case, one cell per
run), then one section per failing or erroring run with its drill-down and links to its member
bundles. Pure: built from suite.json's data (the same dict ``load_suite_bundle`` returns), so
``show`` and ``export`` read what the report says. The words are bundle.suite.vocabulary's.
"""

from __future__ import annotations

from typing import Any, Mapping

from bundle.present.vocabulary import verdict_word
from bundle.suite import vocabulary as words
from bundle.suite.matrix import layout
from bundle.suite.model import THRESHOLD_METRICS


def _md(text: Any) -> str:
    """A table cell's text: pipes escaped, newlines gone (a case id is the user's string)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def matrix_rows(members: list[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the matrix: "case", then one column per run (bundle.suite.matrix.layout:
    run names when every case has the same runs, else positions with the run named in its cell);
    a case without that run shows a dash."""
    cases, columns, cells, named = layout(members)

    def cell(m: Mapping[str, Any]) -> str:
        return words.cell_text(m) if named else f"{m['run']} {words.cell_text(m)}"

    rows = [[case] + [cell(cells[(case, c)]) if (case, c) in cells else words.RUN_MISSING
                      for c in columns] for case in cases]
    return ["case", *columns], rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def _member_link(bundle_id: str | None, what: str) -> str | None:
    return f"- {what}: [{bundle_id}](../{bundle_id}/report.md)" if bundle_id else None


def failing_section(m: Mapping[str, Any]) -> list[str]:
    """The drill-down of one failing/erroring run."""
    lines = [f"### {m['case']} / {m['run']} — {words.status_word(m['status'])}", ""]
    if m.get("error"):
        lines.append(f"- error: {m['error']}")
    metrics = m.get("metrics") or {}
    for name in m.get("failed") or ():
        if name in THRESHOLD_METRICS:
            value = metrics.get(THRESHOLD_METRICS[name][0])
            lines.append(f"- failed {words.threshold_line(name, value, m['thresholds'][name])}")
    if m.get("pixel"):
        lines.append(f"- traced pixel {words.pixel_text(m['pixel'], m.get('pixel_reason', ''))}")
    if m.get("verdict"):
        lines.append(f"- verdict: {verdict_word(m['verdict'])}")
    if m.get("first_divergence"):
        lines.append(f"- {words.divergence_text(m)}")
    if m.get("roots"):
        lines.append(f"- roots: {words.roots_text(m['roots'])}")
    reuse = words.reuse_text(m)
    if reuse:
        lines.append(f"- {reuse}")
    lines += [x for x in (_member_link(m.get("bundle"), "image capture"),
                          _member_link(m.get("trace_bundle"), "traced capture")) if x]
    return lines + [""]


def _unknown_section(unknown: Mapping[str, Any]) -> list[str]:
    if not unknown:
        return []
    lines = [f"## {words.UNKNOWN_HEADING}", ""]
    for where, fields in unknown.items():
        shown = ", ".join(f"{k}: {_md(v)}" for k, v in fields.items())
        lines.append(f"- {where or '(top level)'}: {shown}")
    return lines + [""]


def report_markdown(data: Mapping[str, Any]) -> str:
    """report.md from suite.json's data."""
    members = list(data.get("members") or [])
    lines = [f"# {words.suite_title(data['name'])}", "",
             f"**{words.summary_line(data.get('summary') or {})}**", "",
             f"Target `{data.get('target')}`, suite file `{(data.get('source') or {}).get('path')}` "
             f"(sha256 `{(data.get('source') or {}).get('sha256', '')[:12]}`), "
             f"drill-down: {data.get('trace')}.", "",
             f"## {words.MATRIX_HEADING}", "", *_table(*matrix_rows(members)), "",
             "![worst threshold margin per run](plots/matrix.png)", ""]
    failing = [m for m in members if m.get("status") != "pass"]
    if failing:
        lines += [f"## {words.FAILING_HEADING}", ""]
        for m in failing:
            lines += failing_section(m)
    reused = [m for m in members if m.get("status") == "pass" and words.reuse_text(m)]
    if reused:
        lines += [f"## {words.REUSE_HEADING}", ""] + [f"- {m['case']} / {m['run']}: {words.reuse_text(m)}"
                                      for m in reused] + [""]
    lines += _unknown_section(data.get("unknown_fields") or {})
    return "\n".join(lines).rstrip() + "\n"
