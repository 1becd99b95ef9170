"""report.md: what a person reads first, rendered from a CaptureResult (pure: no I/O).

Sections, in order: the verdict line; the first divergence; the normalization chain and each
engine's self-consistency; every key in pipeline order; image metrics; plots; what was attempted
(partial captures only); the commands run; the environment; the command that reproduces the
bundle. Nothing here computes a finding: comparison, chain and metrics arrive as records, and the
report only lays them out. Engine names come from the comparison (``c``/``py`` for the built-in
targets) and are never assumed.
"""

from __future__ import annotations

import math
import os
import re
from typing import Iterable, Mapping, Sequence

from bundle.analysis.chain import CONSISTENCY, FINAL_KEY
from bundle.model.records import (CaptureResult, ChainReport, CommandRecord, ComparisonRow,
                            Consistency, ImageMetrics)
from bundle.present.vocabulary import (BAD, attribution_sentence, CHAIN_FORMULA, CORRELATION_LABEL,
                                       CORRELATION_PASS_LINE, DASH, FIRST_CHAIN_DIVERGENCE_AT,
                                       FIRST_DIVERGENCE_AT, MARK_COLUMN, NOT_SELF_CONSISTENT, OK,
                                       PEAK_DISTANCE_LABEL, PEAK_DISTANCE_PASS_LINE, PRINTS_UNUSED,
                                       WITHIN_TOLERANCE, chain_totals, consistency_state,
                                       fmt_short, fmt_value, mark, not_checkable,
                                       parity_sentence, ratio_label, verdict_word)
from bundle.present.vocabulary import key_label as _vocab_key_label
from bundle.present.vocabulary import TRUSTED_NOTE

STDERR_TAIL_LINES = 15


# --------------------------------------------------------------------------- small formatters


def cell(text: object) -> str:
    """A Markdown table cell: pipes escaped, newlines folded."""
    s = "" if text is None else str(text)
    return s.replace("\\|", "|").replace("|", "\\|").replace("\r", "").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]],
          align: Sequence[str] | None = None) -> list[str]:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    out = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        out.append("| " + " | ".join(cell(c) for c in r) + " |")
    return out


def fence(text: str, lang: str = "") -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    f = "`" * max(3, longest + 1)
    return [f + lang, text.rstrip("\n"), f]


def key_label(row: ComparisonRow, width: int) -> str:
    """``key``, ``key[i]`` for vector components, ``key#n`` for a repeated key's n-th line."""
    return _vocab_key_label(row.key, row.occurrence, row.component if width > 1 else None)


def _widths(rows: Sequence[ComparisonRow]) -> dict[tuple[str, int], int]:
    w: dict[tuple[str, int], int] = {}
    for r in rows:
        k = (r.key, r.occurrence)
        w[k] = max(w.get(k, 0), r.component + 1)
    return w


def _status_mark(row: ComparisonRow, ref: str, cand: str) -> str:
    return {
        "match": OK,
        "differ": BAD,
        "missing_ref": f"{BAD} missing in {ref}",
        "missing_cand": f"{BAD} missing in {cand}",
        "unparsed": f"{BAD} unparsed",
    }.get(row.status, row.status)


def program(cmd: CommandRecord) -> str:
    return os.path.basename(cmd.argv[0]) if cmd.argv else "?"


def outcome(cmd: CommandRecord) -> str:
    """How a command ended, in a few words."""
    if cmd.timed_out:
        return f"timed out after {cmd.wall_s:.1f} s"
    if cmd.exit_code is None:
        return f"did not start: {cmd.error}" if cmd.error else "no exit code"
    text = f"exit {cmd.exit_code}"
    if cmd.error:
        text += f" ({cmd.error})"
    return text


# --------------------------------------------------------------------------- sections


def _verdict(result: CaptureResult) -> list[str]:
    cmp = result.comparison
    if result.verdict == "divergence" and cmp is not None and cmp.first_divergence is not None:
        fd = cmp.first_divergence
        label = key_label(fd, _widths(cmp.rows).get((fd.key, fd.occurrence), 1))
        line = f"**Verdict: {verdict_word('divergence')}** — {FIRST_DIVERGENCE_AT} `{label}`"
    elif result.verdict == "divergence":
        line = f"**Verdict: {verdict_word('divergence')}**"
        if cmp is not None and cmp.chain.first_divergence is not None:
            line += f" — {FIRST_CHAIN_DIVERGENCE_AT} `{cmp.chain.first_divergence.key}`"
    elif result.verdict == "parity":
        n = cmp.keys_compared if cmp is not None else 0
        line = f"**Verdict: {verdict_word('parity')}** — {parity_sentence(n)}"
    else:
        failed = [c.step for c in result.commands if not c.ok]
        why = (f"failed: {', '.join(failed)}" if failed
               else (result.notes[0] if result.notes else "nothing could be compared"))
        line = f"**Verdict: {verdict_word('incomplete')}** — {why}"
    if result.status == "partial":
        line += " · status: **partial**"
    return [line]


def key_class(result: CaptureResult, key: str) -> str:
    """The key's class on the key graph (bundle.analysis.roots), for the full key table."""
    found = next((k for k in result.roots.keys if k.key == key), None) if result.roots else None
    return found.klass if found is not None else ""


def _independent(result: CaptureResult) -> list[str]:
    """Independent divergences: one row per root and amplified key, with a one-line reason."""
    from bundle.analysis.roots import reason

    out = ["## Independent divergences", ""]
    roots, cmp = result.roots, result.comparison
    if roots is None or cmp is None:
        out.append("No comparison, so no key could be classified.")
        return out
    if not roots.graph_given:
        out += ["No key graph was given for this target: every divergent key counts as a root "
                "candidate.", ""]
    causes = [k for k in roots.keys if k.klass in ("root", "amplified")]
    if not causes:
        out.append("None: no key is beyond tolerance.")
        return out
    ref, cand = cmp.ref_engine, cmp.cand_engine
    out += table(["key", "class", f"{cand}/{ref}", "rel diff", "explains", "why"], [
        (f"`{k.key}`" + (f"[{k.component}]" if k.component else ""), k.klass,
         fmt_short(k.ratio, 8), fmt_short(k.rel_diff, 3), _explains(k.explains), reason(k, roots))
        for k in causes], ["l", "l", "r", "r", "l", "l"])
    out += [""] + _attribution_lines(result)
    n = len(roots.of("carried"))
    out.append(f"{len(causes)} independent cause(s); {n} other divergent key(s) only carry them "
               f"(A = {roots.amplification:g}; graph: {roots.graph_source or 'none'}).")
    return out


def _explains(keys: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return (shown + f" and {len(keys) - limit} more" if len(keys) > limit else shown) or "—"


def _attribution_lines(result: CaptureResult) -> list[str]:
    """The chain's final ratio against what its differing factors explain."""
    a = result.roots.attribution if result.roots else None
    cmp = result.comparison
    if a is None or cmp is None or not a.explained_by:
        return []
    selves = [(e, fmt_short(c.product, 3), fmt_short(c.final, 3))
              for e, c in cmp.chain.consistency.items()]
    residual = fmt_short(a.residual, 6) if a.unexplained else None
    return [attribution_sentence(list(a.explained_by), fmt_short(a.explained_ratio, 6),
                                 fmt_short(a.final_ratio, 6), residual, selves), ""]


def _first_divergence(result: CaptureResult) -> list[str]:
    out = ["## First divergence", ""]
    cmp = result.comparison
    if cmp is None:
        out.append("No comparison: no trace could be read from at least one engine.")
        return out
    fd = cmp.first_divergence
    ref, cand = cmp.ref_engine, cmp.cand_engine
    if fd is None:
        out.append(f"None: every value of the {cmp.keys_compared} keys both traces printed is "
                   f"{WITHIN_TOLERANCE}.")
        missing = {e: ks for e, ks in cmp.missing.items() if ks}
        if missing:
            out.append("")
            out.append("Keys absent on one side: "
                       + "; ".join(f"{e} lacks {', '.join(ks)}" for e, ks in missing.items()) + ".")
        return out
    width = _widths(cmp.rows).get((fd.key, fd.occurrence), 1)
    where = []
    if width > 1:
        where.append(f"component {fd.component} of {width}")
    if fd.occurrence:
        where.append(f"occurrence {fd.occurrence + 1} of the key")
    where.append(f"trace position {fd.position}")
    state = {"differ": "beyond tolerance", "missing_cand": f"missing in {cand}",
             "missing_ref": f"missing in {ref}", "unparsed": "unparsed on a side"
             }.get(fd.status, fd.status)
    out.append(f"`{key_label(fd, width)}` ({', '.join(where)}): {state}")
    out.append("")
    out += table(["", "value"], [
        (ref, fmt_value(fd.ref)),
        (cand, fmt_value(fd.cand)),
        ("abs diff", fmt_short(fd.abs_diff)),
        ("rel diff", fmt_short(fd.rel_diff, 3)),
        (f"ratio {ratio_label(ref, cand)}", fmt_short(fd.ratio, 8)),
        ("tolerance", f"rtol {fd.rtol:g}, atol {fd.atol:g}"),
    ], ["l", "r"])
    return out


def _consistency_lines(engine: str, c: Consistency | None, chain: ChainReport, ref: str,
                       cand: str) -> list[str]:
    if c is None:
        return [f"- `{engine}`: no trace, no self-consistency check."]
    if c.missing:
        return [f"- `{engine}`: cannot check, missing {', '.join(c.missing)}."]
    if c.consistent or c.consistent is None:
        return [f"- `{engine}`: product {fmt_value(c.product)} vs its own {FINAL_KEY} "
                f"{fmt_value(c.final)} — ratio {fmt_short(c.ratio, 8)} — "
                f"{consistency_state(c.consistent)}" + (f" {OK}" if c.consistent else "")]
    lines = [
        "",
        f"> **{BAD} `{engine}` trace is {NOT_SELF_CONSISTENT}: final/product = "
        f"{fmt_short(c.ratio, 8)}.** Its printed factors compose to {fmt_value(c.product)}, but "
        f"it printed {FINAL_KEY} = {fmt_value(c.final)}: this trace {PRINTS_UNUSED}.",
    ]
    hint = _explaining_factor(c, chain, ref, cand)
    if hint:
        lines.append(f"> {hint}")
    lines.append("")
    return lines


def _explaining_factor(c: Consistency, chain: ChainReport, ref: str, cand: str) -> str | None:
    """Name a chain factor whose cross-engine ratio equals this engine's final/product ratio.

    A match is a lead, not a proof: it says the final value behaves as if that factor had the
    other engine's value.
    """
    r = c.ratio
    if r is None or not math.isfinite(r) or r <= 0 or abs(r - 1) < CONSISTENCY.rtol:
        return None
    for f in chain.factors:
        fr = f.ratio
        if fr is None or not math.isfinite(fr) or fr <= 0 or f.key == FINAL_KEY or f.matches:
            continue
        # the factor ratio as it would act on this engine's product
        inverse = f.key == "steps"
        eff = fr if c.engine == ref else 1.0 / fr
        if inverse:
            eff = 1.0 / eff
        if abs(math.log(r) - math.log(eff)) < 1e-3:
            return (f"It matches the {ratio_label(ref, cand)} ratio of `{f.key}` ({fmt_short(fr, 8)}): "
                    f"`{c.engine}`'s final value behaves as if `{f.key}` had "
                    f"{ref if c.engine == cand else cand}'s value.")
    return None


def _chain(result: CaptureResult) -> list[str]:
    out, cmp = ["## Normalization chain", ""], result.comparison
    if cmp is None:
        return out + ["Not checked: no comparison."]
    chain, ref, cand = cmp.chain, cmp.ref_engine, cmp.cand_engine
    out.append(CHAIN_FORMULA)
    out.append("")
    first = chain.first_divergence.key if chain.first_divergence else None
    rows = []
    for f in chain.factors:
        name = f"**{f.key}**" if f.key == first else f.key
        rows.append((name, fmt_value(f.ref), fmt_value(f.cand), fmt_short(f.ratio, 8),
                     mark(f.matches)))
    out += table(["factor", ref, cand, f"ratio {ratio_label(ref, cand)}", MARK_COLUMN], rows,
                 ["l", "r", "r", "r", "c"])
    out.append("")
    if first:
        out.append(f"First chain factor beyond tolerance: `{first}`.")
    out.append(chain_totals(fmt_short(chain.product_of_ratios, 8), fmt_short(chain.final_ratio, 8)))
    out.append("")
    out.append(f"Self-consistency (each trace's factors against its own {FINAL_KEY}):")
    out.append("")
    engines = [ref, cand] + [e for e in chain.consistency if e not in (ref, cand)]
    for e in engines:
        out += _consistency_lines(e, chain.consistency.get(e), chain, ref, cand)
    return out


def _keys(result: CaptureResult) -> list[str]:
    out, cmp = ["## All keys (pipeline order)", ""], result.comparison
    if cmp is None:
        return out + ["No comparison."]
    ref, cand = cmp.ref_engine, cmp.cand_engine
    widths = _widths(cmp.rows)
    fd = cmp.first_divergence
    rows = []
    ordered = sorted(cmp.rows, key=lambda r: (r.position, r.occurrence, r.component))
    for r in ordered:
        width = widths[(r.key, r.occurrence)]
        label = f"`{key_label(r, 1)}`"
        if fd is not None and (r.key, r.occurrence, r.component) == (fd.key, fd.occurrence,
                                                                       fd.component):
            label = f"**{label}** ◀ first"
        rows.append((label, r.component if width > 1 else "", fmt_value(r.ref), fmt_value(r.cand),
                     fmt_short(r.abs_diff), fmt_short(r.rel_diff, 3), fmt_short(r.ratio, 8),
                     _status_mark(r, ref, cand), key_class(result, r.key)))
    out += table(["key", "component", ref, cand, "abs diff", "rel diff", ratio_label(ref, cand),
                  MARK_COLUMN, "class"], rows, ["l", "r", "r", "r", "r", "r", "r", "c", "l"])
    out.append("")
    n_diff = sum(1 for r in cmp.rows if r.status != "match")
    out.append(f"{len(cmp.rows)} values, {cmp.keys_compared} keys on both sides, "
               f"{n_diff} beyond tolerance or missing. "
               "rel diff = |cand − ref| / max(|ref|, |cand|).")
    return out


def _metrics(m: ImageMetrics | None) -> list[str]:
    out = ["## Image metrics", ""]
    if m is None:
        out.append("No images: at least one engine produced no float image, so there are no "
                   "image metrics.")
        return out
    ref, cand = m.ref_engine, m.cand_engine
    def where(s) -> str:
        return f"{fmt_short(s.max, 8)} at (slow {s.max_slow}, fast {s.max_fast})"
    rows = [
        (CORRELATION_LABEL, "", "", f"{m.pearson:.6f}", CORRELATION_PASS_LINE,
         mark(m.correlation_pass)),
        (f"sum ratio {ratio_label(ref, cand)}", fmt_short(m.ref.total, 8), fmt_short(m.cand.total, 8),
         fmt_short(m.sum_ratio, 8), "", ""),
        ("max_I and where", where(m.ref), where(m.cand),
         fmt_short(m.cand.max / m.ref.max, 8) if m.ref.max else DASH, "", ""),
        ("mean", fmt_short(m.ref.mean, 8), fmt_short(m.cand.mean, 8),
         fmt_short(m.cand.mean / m.ref.mean, 8) if m.ref.mean else DASH, "", ""),
        ("RMSE", "", "", fmt_short(m.rmse, 8), "", ""),
        ("value at traced pixel", fmt_value(m.ref.traced_value), fmt_value(m.cand.traced_value),
         fmt_short(m.cand.traced_value / m.ref.traced_value, 8)
         if m.ref.traced_value and m.cand.traced_value is not None else DASH, "", ""),
        ("bright peaks (matched)", m.peaks_ref, m.peaks_cand, m.peaks_matched, "", ""),
        (PEAK_DISTANCE_LABEL, "", "", fmt_short(m.mean_peak_distance, 4),
         PEAK_DISTANCE_PASS_LINE, mark(m.peak_distance_pass)),
    ]
    out.append(f"Image: {m.slow} slow × {m.fast} fast pixels.")
    out.append("")
    out += table(["metric", ref, cand, "value / ratio", "pass line", MARK_COLUMN], rows,
                 ["l", "r", "r", "r", "l", "c"])
    return out


def _plots(plots: Mapping[str, str]) -> list[str]:
    out = ["## Plots", ""]
    if not plots:
        out.append("No plots.")
        return out
    for name, path in plots.items():
        out.append(f"![{name}]({path})")
        out.append("")
    return out[:-1]


def _attempted(result: CaptureResult) -> list[str]:
    out = ["## Attempted", "",
           "This capture is **partial**: what failed, what is missing, and what could still be "
           "checked.", ""]
    out += _failed_commands(result)
    out += _missing_keys(result)
    out += _reduced_chain(result)
    if result.notes:
        out.append("")
        out.append("### Notes")
        out.append("")
        out += [f"- {n}" for n in result.notes]
    return out


def _failed_commands(result: CaptureResult) -> list[str]:
    out: list[str] = []
    tails: Mapping[str, str] = result.extra.get("stderr_tails", {}) if result.extra else {}
    failed = [c for c in result.commands if not c.ok]
    if failed:
        out.append("### Failed commands")
        out.append("")
        for c in failed:
            out.append(f"- `{c.step}` ({program(c)}, {c.role}"
                       + (f", engine {c.engine}" if c.engine else "") + f"): {outcome(c)}, "
                       f"after {c.wall_s:.2f} s")
            out += _stderr_tail(c, tails.get(c.step))
            out.append("")
    for run in result.engines:
        if run.failed_steps:
            out.append(f"- engine `{run.engine}`: failed steps {', '.join(run.failed_steps)}"
                       + ("; no readable trace" if run.trace is None else
                          f"; trace has {len(run.trace.entries)} key lines"))
    return out


def _stderr_tail(c: CommandRecord, tail: str | None) -> list[str]:
    if not (tail and tail.strip()):
        return []
    lines = tail.rstrip("\n").splitlines()[-STDERR_TAIL_LINES:]
    out = ["", f"  last {len(lines)} lines of stderr (`{c.stderr.path}`):"
           if c.stderr else f"  last {len(lines)} lines of stderr:", ""]
    block = fence("\n".join(lines))
    return out + ["  " + ln if ln else "" for ln in "\n".join(block).split("\n")]


def _missing_keys(result: CaptureResult) -> list[str]:
    out = ["", "### Missing keys", ""]
    cmp = result.comparison
    if cmp is None:
        no_trace = [r.engine for r in result.engines if r.trace is None]
        out.append("No comparison: no trace from " + (", ".join(no_trace) or "an engine") + ".")
        return out
    lacking = [(engine, keys) for engine, keys in cmp.missing.items() if keys]
    for engine, keys in lacking:
        out.append(f"- `{engine}` lacks {len(keys)} keys: " + ", ".join(f"`{k}`" for k in keys))
    if not lacking:
        out.append("None: both traces printed the same keys.")
    return out


def _reduced_chain(result: CaptureResult) -> list[str]:
    out = ["", "### Reduced chain", ""]
    cmp = result.comparison
    if cmp is None:
        out.append("Nothing could be checked.")
        return out
    chain = cmp.chain
    both = [f.key for f in chain.factors if f.ref is not None and f.cand is not None]
    lacking = [f.key for f in chain.factors if f.ref is None or f.cand is None]
    out.append(f"Compared in both engines ({len(both)} of {len(chain.factors)}): "
               + (", ".join(f"`{k}`" for k in both) or "none") + ".")
    if lacking:
        out.append(f"Not comparable: {', '.join(f'`{k}`' for k in lacking)}.")
    for e, c in chain.consistency.items():
        if c.missing:
            out.append(f"- `{e}` {not_checkable(', '.join(c.missing))}.")
        else:
            out.append(f"- `{e}` self-consistency checked: {consistency_state(c.consistent)} "
                       f"(ratio {fmt_short(c.ratio, 8)}).")
    return out


def _commands(result: CaptureResult) -> list[str]:
    out = ["## Commands run", ""]
    if not result.commands:
        out.append("No commands were run.")
        return out
    ordered = [c for c in result.commands if not c.ok] + [c for c in result.commands if c.ok]
    rows = [(c.step, f"`{program(c)}`", c.role, c.engine or "", outcome(c), f"{c.wall_s:.2f}")
            for c in ordered]
    out += table(["step", "program", "role", "engine", "exit", "seconds"], rows,
                 ["l", "l", "l", "l", "l", "r"])
    out.append("")
    out.append("Failures first; full argv, environment and file hashes are in manifest.json, "
               "raw output in logs/.")
    return out


def _environment(result: CaptureResult) -> list[str]:
    out = ["## Environment", ""]
    env = result.environment or {}
    for k, v in env.items():
        if k in ("versions", "container") or isinstance(v, Mapping):
            continue
        if v is not None:
            out.append(f"- {k}: {v}")
    for k, v in env.items():
        if k not in ("versions", "container") and isinstance(v, Mapping):
            items = ", ".join(f"{a}={b}" for a, b in v.items())
            out.append(f"- {k}: {items or '—'}")
    target = (result.extra or {}).get("target") or {}
    if target.get("repo"):
        commit = target.get("repo_commit") or "not a git checkout"
        dirty = (f", uncommitted changes (sha256 {target['repo_diff_sha256'][:12]})"
                 if target.get("repo_dirty") and target.get("repo_diff_sha256") else "")
        out.append(f"- repo: `{target['repo']}` at `{commit}`{dirty}")
    container = env.get("container")
    if container:
        out.append(f"- container image: `{container.get('image_id') or '?'}`"
                   + (f" ({container['image_tag']})" if container.get("image_tag") else ""))
        digests = container.get("repo_digests") or []
        if digests:
            out.append(f"- repo digests: {', '.join(f'`{d}`' for d in digests)}")
    else:
        out.append("- container: none (ran on the host)")
    versions = env.get("versions") or {}
    if versions:
        out.append("")
        out += table(["tool", "version"], [(k, v if v is not None else DASH)
                                           for k, v in versions.items()])
    return out


def _reproduce(result: CaptureResult) -> list[str]:
    out = ["## Reproduce", ""]
    if result.reproduce:
        out += fence(result.reproduce, "sh")
    else:
        out.append("No reproduce command was recorded.")
    return out


# --------------------------------------------------------------------------- the report


SECTIONS = ("Independent divergences", "First divergence", "Normalization chain", "All keys (pipeline order)",
            "Image metrics", "Plots", "Attempted", "Commands run", "Environment", "Reproduce")


def report_markdown(result: CaptureResult, plots: Mapping[str, str]) -> str:
    """The bundle's report.md text. Pure: reads only its arguments.

    ``plots`` maps a plot's name to its bundle-relative PNG path (as ``render_plots`` returns).
    The "Attempted" section appears only for a partial capture.
    """
    title = f"# nb-evidence report: {result.bundle_id}"
    meta = []
    spec = result.spec or {}
    if spec.get("description"):
        meta.append(str(spec["description"]).strip())
    facts = [f"target `{result.target}`"]
    if spec.get("name"):
        facts.insert(0, f"spec `{spec['name']}`")
    if result.pixel is not None:
        facts.append(f"traced pixel (slow {result.pixel[0]}, fast {result.pixel[1]})")
    if result.created_utc:
        facts.append(f"captured {result.created_utc}")
    meta.append(" · ".join(facts))
    if TRUSTED_NOTE in result.notes:
        meta.append(f"**Trusted**: {TRUSTED_NOTE}")

    parts: list[list[str]] = [
        [title, ""] + _verdict(result) + [""] + meta,
        _independent(result),
        _first_divergence(result),
        _chain(result),
        _keys(result),
        _metrics(result.metrics),
        _plots(plots),
    ]
    if result.status == "partial":
        parts.append(_attempted(result))
    parts += [_commands(result), _environment(result), _reproduce(result)]
    return "\n\n".join("\n".join(p).strip("\n") for p in parts) + "\n"
