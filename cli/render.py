"""Terminal summary of a bundle, from its manifest dict (docs/bundle-format.md).

``summary_renderables`` is pure: it returns rich renderables and prints nothing; the command that
shows a bundle hands them to its Console. Floats in a manifest may be the strings "nan", "inf",
"-inf" (JSON has no such numbers) and null where a side lacks the value; both are shown as such.
"""

from __future__ import annotations

from typing import Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bundle.present import vocabulary as v
from bundle.present.vocabulary import fmt_json as fmt

MARK_STYLE = {v.OK: "bold green", v.BAD: "bold red", v.DASH: "dim"}
VERDICT_STYLE = {"parity": "bold green", "divergence": "bold red", "incomplete": "bold yellow"}


def _mark(flag: bool | None) -> Text:
    word = v.mark(flag)
    return Text(word, style=MARK_STYLE[word])


def _verdict(result: Mapping) -> Text:
    verdict = str(result.get("verdict", "?"))
    t = Text("Verdict: ", style="bold")
    t.append(v.verdict_word(verdict), style=VERDICT_STYLE.get(verdict, "bold"))
    fd = result.get("first_divergence")
    if verdict == "divergence" and fd:
        t.append(f" — {v.FIRST_DIVERGENCE_AT} ")
        t.append(_key_label(fd), style="bold")
    elif verdict == "divergence" and result.get("first_chain_divergence"):
        t.append(f" — {v.FIRST_CHAIN_DIVERGENCE_AT} ")
        t.append(result["first_chain_divergence"]["key"], style="bold")
    elif verdict == "parity":
        t.append(f" — {v.parity_sentence_short(result.get('keys_compared', 0))}")
    if result.get("status") == "partial":
        t.append("  (status: partial)", style="yellow")
    if result.get("bundle"):
        t.append(f"\n{result['bundle']}", style="dim")
    return t


def _key_label(d: Mapping) -> str:
    return v.key_label(str(d.get("key")), int(d.get("occurrence") or 0), d.get("component") or None)


def _engines(result: Mapping) -> tuple[str, str]:
    eng = result.get("engines") or {}
    return str(eng.get("ref") or "ref"), str(eng.get("cand") or "cand")


def _first_divergence(result: Mapping, ref: str, cand: str) -> RenderableType | None:
    fd = result.get("first_divergence")
    if not fd:
        return None
    t = Table(title="First divergence", title_justify="left", show_header=False, box=None,
              padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("key", _key_label(fd))
    t.add_row(ref, fmt(fd.get(ref)))
    t.add_row(cand, fmt(fd.get(cand)))
    t.add_row("rel diff", fmt(fd.get("rel_diff"), 3))
    t.add_row(f"ratio {v.ratio_label(ref, cand)}", fmt(fd.get("ratio"), 8))
    return t


def roots_table(result: Mapping, ref: str, cand: str) -> RenderableType | None:
    """The independent divergences (roots and amplified keys), one row each."""
    rows = [("root", r) for r in result.get("roots") or []]
    rows += [("amplified", r) for r in result.get("amplified") or []]
    if not rows:
        return None
    t = Table(title="Independent divergences", title_justify="left", padding=(0, 1))
    for name, justify in (("key", "left"), ("class", "left"), (f"{cand}/{ref}", "right"),
                          ("rel diff", "right"), ("explains", "left"), ("why", "left")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind, r in rows:
        explains = list(r.get("explains") or [])
        shown = ", ".join(explains[:4]) + (f" +{len(explains) - 4}" if len(explains) > 4 else "")
        t.add_row(str(r.get("key")), kind, fmt(r.get("ratio"), 8), fmt(r.get("rel_diff"), 3),
                  shown, str(r.get("reason") or ""))
    return t


def _chain(result: Mapping, ref: str, cand: str) -> list[RenderableType]:
    chain = result.get("chain") or {}
    factors = chain.get("factors") or []
    out: list[RenderableType] = []
    if factors:
        t = Table(title="Normalization chain", title_justify="left")
        t.add_column("factor")
        t.add_column(ref, justify="right")
        t.add_column(cand, justify="right")
        t.add_column(v.ratio_label(ref, cand), justify="right")
        t.add_column("", justify="center")
        first = (result.get("first_chain_divergence") or {}).get("key")
        for f in factors:
            matches = f["matches"]
            t.add_row(Text(str(f.get("key")), style="bold red" if f.get("key") == first else ""),
                      fmt(f.get(ref)), fmt(f.get(cand)), fmt(f.get("ratio"), 8), _mark(matches))
        out.append(t)
        out.append(Text(v.chain_totals_short(fmt(chain.get('product_of_ratios'), 8),
                                             fmt(chain.get('final_ratio'), 8)), style="dim"))
    for engine, c in (chain.get("consistency") or {}).items():
        line = Text(f"{engine}: ", style="bold")
        if c.get("missing"):
            line.append(v.not_checkable(', '.join(c['missing'])), style="yellow")
        elif c.get("consistent"):
            line.append(f"product {fmt(c.get('product'))} vs final {fmt(c.get('final'))}, "
                        f"ratio {fmt(c.get('ratio'), 8)} — {v.consistency_state(True)} ")
            line.append(_mark(True))
        elif c.get("consistent") is False:
            line.append(f"{v.NOT_SELF_CONSISTENT}: final/product = {fmt(c.get('ratio'), 8)} ",
                        style="bold white on red")
            line.append(f" (product {fmt(c.get('product'))}, printed final "
                        f"{fmt(c.get('final'))}: the trace {v.PRINTS_UNUSED})",
                        style="red")
        else:
            line.append(v.SELF_CONSISTENCY_UNDETERMINED, style="yellow")
        out.append(line)
    return out


def _metrics(result: Mapping, ref: str, cand: str) -> RenderableType:
    m = result.get("metrics")
    if not m:
        return Text("Image metrics: no images", style="dim")
    t = Table(title="Image metrics", title_justify="left")
    t.add_column("metric")
    t.add_column(ref, justify="right")
    t.add_column(cand, justify="right")
    t.add_column("value", justify="right")
    t.add_column("", justify="center")
    rs, cs = m.get(ref) or {}, m.get(cand) or {}
    t.add_row(f"correlation ({v.CORRELATION_PASS_LINE})", "", "", fmt(m.get("pearson"), 6),
              _mark(m.get("correlation_pass")))
    t.add_row(f"sum ratio {v.ratio_label(ref, cand)}", fmt(rs.get("total"), 6), fmt(cs.get("total"), 6),
              fmt(m.get("sum_ratio"), 6), Text(""))
    def where(s: Mapping) -> str:
        return f"{fmt(s.get('max'), 6)} @ ({s.get('max_slow')}, {s.get('max_fast')})"
    t.add_row("max_I (slow, fast)", where(rs), where(cs), "", Text(""))
    t.add_row("mean", fmt(rs.get("mean"), 6), fmt(cs.get("mean"), 6), "", Text(""))
    t.add_row("RMSE", "", "", fmt(m.get("rmse"), 6), Text(""))
    t.add_row("traced pixel", fmt(rs.get("traced_value"), 8), fmt(cs.get("traced_value"), 8), "",
              Text(""))
    peaks = m.get("peaks") or {}
    t.add_row("peaks matched", str(peaks.get(ref, "")), str(peaks.get(cand, "")),
              str(m.get("peaks_matched", "")), Text(""))
    t.add_row(f"mean peak distance ({v.PEAK_DISTANCE_PASS_LINE})", "", "", fmt(m.get("mean_peak_distance"), 4),
              _mark(m.get("peak_distance_pass")))
    return t


def _failed(result: Mapping) -> RenderableType | None:
    failed = result.get("failed_commands") or []
    if not failed:
        return None
    t = Table(title="Failed commands", title_justify="left", title_style="bold red")
    t.add_column("step")
    t.add_column("exit", justify="right")
    t.add_column("why")
    for f in failed:
        exit_text = ("timeout" if f.get("timed_out") else
                     v.DASH if f.get("exit_code") is None else str(f.get("exit_code")))
        t.add_row(str(f.get("step")), exit_text, str(f.get("error") or ""))
    return t


def summary_renderables(manifest: dict) -> list[RenderableType]:
    """Verdict, first divergence, chain table with self-consistency, image metrics, failed
    commands, missing keys and notes: rich renderables for a Console. Pure."""
    result = manifest.get("result") or {}
    ref, cand = _engines(result)
    out: list[RenderableType] = [_verdict(result)]
    fd = _first_divergence(result, ref, cand)
    if fd is not None:
        out.append(fd)
    roots = roots_table(result, ref, cand)
    if roots is not None:
        out.append(roots)
    out += _chain(result, ref, cand)
    out.append(_metrics(result, ref, cand))
    failed = _failed(result)
    if failed is not None:
        out.append(failed)
    missing = {e: ks for e, ks in (result.get("missing") or {}).items() if ks}
    if missing:
        out.append(Group(*[Text(f"{e} lacks: {', '.join(ks)}", style="yellow")
                           for e, ks in missing.items()]))
    notes = result.get("notes") or manifest.get("notes") or []
    if notes:
        out.append(Group(*[Text(f"• {n}", style="dim") for n in notes]))
    return out
