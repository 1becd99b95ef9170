"""The bisect bundle's report.md (pure): the story in the issue's order: the commits probed, the
first bad commit with its subject and the files it changed (or the candidate range skips left),
then the diff of the last good commit's bundle against the first bad commit's."""

from __future__ import annotations

from typing import Any, Mapping


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def probe_table(probes: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| round | commit | subject | predicate | verdict | key ratio | wall s | bundle |",
             "|---|---|---|---|---|---|---|---|"]
    for p in sorted(probes, key=lambda p: p["index"]):
        subject = str(p["subject"]).replace("|", "\\|")
        lines.append(f"| {p['round']} | `{p['sha'][:10]}` | {subject} | {p['value']} | "
                     f"{_num(p['verdict'])} | {_num(p['key_ratio'])} | {_num(p['wall_s'])} | "
                     f"{_num(p['bundle_id'])} |")
    return lines


def result_lines(data: Mapping[str, Any]) -> list[str]:
    res = data["result"]
    if res["status"] in ("good-is-bad", "bad-is-good"):
        return ["## No bisection", "", res["reason"]]
    if res["first_bad"] is not None:
        fb = res["first_bad"]
        lines = ["## First bad commit", "", f"`{fb['sha']}` {fb['subject']}", "",
                 "Files it changed:", ""]
        return lines + ([f"- `{f}`" for f in fb["files"]] or ["- (none)"])
    lines = ["## Candidate range", "",
             "Skipped commits hide the first bad commit; it is one of these:", ""]
    return lines + [f"- `{c['sha'][:10]}` {c['subject']}" + (" (skipped)" if c["skipped"] else "")
                    for c in res["candidates"]]


def report_markdown(data: Mapping[str, Any], diff_md: str | None) -> str:
    pred, res = data["predicate"], data["result"]
    lines = [f"# Bisect: {data['spec']['name']} ({pred['flag']})", "",
             f"Good `{data['good']['sha'][:10]}` ({data['good']['rev']}), bad "
             f"`{data['bad']['sha'][:10]}` ({data['bad']['rev']}): {data['commits']} commits, "
             f"{len(data['probes'])} probed in {data['rounds']} rounds "
             f"({data['executor'].get('workers')} worker(s)).", ""]
    lines += [f"> {n}" for n in data["notes"]] + ([""] if data["notes"] else [])
    lines += ["## Commits probed", "", *probe_table(data["probes"]), ""]
    lines += [*result_lines(data), ""]
    if res.get("skipped"):
        lines += [f"Skipped (could not be tested): "
                  + ", ".join(f"`{s[:10]}`" for s in res["skipped"]), ""]
    lines += ["## Last good against first bad", ""]
    if diff_md:
        lines += [diff_md.rstrip(), ""]
    else:
        pair = data.get("diff_pair") or {}
        lines += [f"Bundles: last good {pair.get('last_good') or '–'}, first bad "
                  f"{pair.get('first_bad') or '–'} (no diff in this report).", ""]
    return "\n".join(lines)
