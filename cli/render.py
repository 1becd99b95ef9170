"""Terminal summary of a bundle, from its manifest dict (docs/bundle-format.md).

``summary_renderables`` is pure: it returns rich renderables and prints nothing; the command that
shows a bundle hands them to its Console. Floats in a manifest may be the strings "nan", "inf",
"-inf" (JSON has no such numbers) and null where a side lacks the value; both are shown as such.
"""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

OK = Text("✓", style="bold green")
BAD = Text("✗", style="bold red")
VERDICT_STYLE = {"parity": "bold green", "divergence": "bold red", "incomplete": "bold yellow"}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return float(v)


def fmt(v: Any, digits: int = 15) -> str:
    """%.15g for values (as traces print them); "—" for an absent value."""
    x = _num(v)
    if x is None:
        return "—" if v is None else str(v)
    return f"{x:.{digits}g}"


def _mark(flag: bool | None) -> Text:
    if flag is None:
        return Text("—", style="dim")
    return OK.copy() if flag else BAD.copy()


def _verdict(result: Mapping) -> Text:
    verdict = str(result.get("verdict", "?"))
    t = Text("Verdict: ", style="bold")
    t.append(verdict.upper(), style=VERDICT_STYLE.get(verdict, "bold"))
    fd = result.get("first_divergence")
    if verdict == "divergence" and fd:
        t.append(" — first divergence at ")
        t.append(_key_label(fd), style="bold")
    elif verdict == "divergence" and result.get("first_chain_divergence"):
        t.append(" — first chain divergence at ")
        t.append(result["first_chain_divergence"]["key"], style="bold")
    elif verdict == "parity":
        t.append(f" — {result.get('keys_compared', 0)} keys agree within tolerance")
    if result.get("status") == "partial":
        t.append("  (status: partial)", style="yellow")
    if result.get("bundle"):
        t.append(f"\n{result['bundle']}", style="dim")
    return t


def _key_label(d: Mapping) -> str:
    label = str(d.get("key"))
    if d.get("component"):
        label += f"[{d['component']}]"
    if d.get("occurrence"):
        label += f"#{int(d['occurrence']) + 1}"
    return label


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
    t.add_row(f"ratio {cand}/{ref}", fmt(fd.get("ratio"), 8))
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
        t.add_column(f"{cand}/{ref}", justify="right")
        t.add_column("", justify="center")
        first = (result.get("first_chain_divergence") or {}).get("key")
        for f in factors:
            matches = f["matches"]
            t.add_row(Text(str(f.get("key")), style="bold red" if f.get("key") == first else ""),
                      fmt(f.get(ref)), fmt(f.get(cand)), fmt(f.get("ratio"), 8), _mark(matches))
        out.append(t)
        out.append(Text(f"product of ratios {fmt(chain.get('product_of_ratios'), 8)}, "
                        f"final ratio {fmt(chain.get('final_ratio'), 8)}", style="dim"))
    for engine, c in (chain.get("consistency") or {}).items():
        line = Text(f"{engine}: ", style="bold")
        if c.get("missing"):
            line.append(f"self-consistency not checkable (missing {', '.join(c['missing'])})",
                        style="yellow")
        elif c.get("consistent"):
            line.append(f"product {fmt(c.get('product'))} vs final {fmt(c.get('final'))}, "
                        f"ratio {fmt(c.get('ratio'), 8)} — consistent ")
            line.append("✓", style="bold green")
        elif c.get("consistent") is False:
            line.append(f"NOT self-consistent: final/product = {fmt(c.get('ratio'), 8)} ",
                        style="bold white on red")
            line.append(f" (product {fmt(c.get('product'))}, printed final "
                        f"{fmt(c.get('final'))}: the trace prints numbers it did not use)",
                        style="red")
        else:
            line.append("self-consistency undetermined", style="yellow")
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
    t.add_row("correlation (≥ 0.999)", "", "", fmt(m.get("pearson"), 6),
              _mark(m.get("correlation_pass")))
    t.add_row(f"sum ratio {cand}/{ref}", fmt(rs.get("total"), 6), fmt(cs.get("total"), 6),
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
    t.add_row("mean peak distance (≤ 1 px)", "", "", fmt(m.get("mean_peak_distance"), 4),
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
                     "—" if f.get("exit_code") is None else str(f.get("exit_code")))
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
