"""The attempts ledger (``docs/fix_plan.md``): read it, write an attempt entry, insert it.

The ledger format is the users' own (nanobragg-facts.md §6): an index table, then one section per
item headed ``## [ITEM-ID] Title`` with bullet fields (``- Status:``, ``- Attempts History:`` ...);
attempts are nested bullets under ``- Attempts History:``, newest first::

      * [2026-11-27] Attempt #28 (owner) — Result: **PARITY FAILURE** (first divergence at F_cell). ...
        Metrics: ...
        Artifacts:
          - `bundles/<id>/report.md` - ...
        Observations/Hypotheses:
          - ...
        Next Actions: (fill in)

Everything here is a pure function over text except ``attach`` (which reads the bundle and the
ledger and writes the ledger once, atomically) and ``write_atomic``. Insertion touches nothing
but the inserted lines: every other byte, line endings and the final newline (or its absence)
included, is left as it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from bundle.analysis.chain import CONSISTENCY, FINAL_KEY
from bundle.ledger.reading import engines, factor_differs, rel, tolerance
from bundle.model.errors import UserError
from bundle.model.hashing import sha256_file
from bundle.present.vocabulary import (NOT_SELF_CONSISTENT, PRINTS_UNUSED, engine_label, failed_text,
                                       fmt_pair, fmt_plain, fmt_ratio, key_label_prose, key_list,
                                       not_checkable, one_line, ratio_label, result_word)
from bundle.store.archive import display_path
from bundle.store.schema import load_manifest
from bundle.store.verify import require_intact
from bundle.model import files

# --------------------------------------------------------------------------- parsing

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING_L12 = re.compile(r"^#{1,2}(?:\s|$)")
_ITEM = re.compile(r"^##\s+\[([^\]\r\n]+)\][ \t]*([^\r\n]*?)\s*$")
_HISTORY = re.compile(r"^\s*[-*]\s+(?:\*\*)?Attempts History\b")
_ATTEMPT = re.compile(r"^\s*[-*]\s+(?:\[[^\]\r\n]*\]\s+)?(?:\*\*)?Attempt\s+#(\d+)\b")
_TOP_FIELD = re.compile(r"^[-*]\s")



def split_lines(text: str) -> list[str]:
    """Lines with their endings kept (\\r\\n, \\r or \\n); ''.join(result) == text."""
    return _LINE.findall(text)


def _eol(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith(("\n", "\r")):
        return line[-1]
    return ""


def _bare(line: str) -> str:
    return line.rstrip("\r\n")


@dataclass(frozen=True)
class LedgerItem:
    """One ``## [ID] Title`` section. Line indices are 0-based into ``Ledger.lines``.

    ``end`` is exclusive (the next level-1/2 heading, or the end of the text). ``history_line``
    is the ``- Attempts History:`` line, None when the item has none. ``attempts`` are the
    attempt numbers in order of appearance, ``attempt_lines`` where each one starts.
    """

    id: str
    title: str
    start: int
    end: int
    history_line: int | None
    attempts: tuple[int, ...]
    attempt_lines: tuple[int, ...]

    @property
    def next_attempt(self) -> int:
        return max(self.attempts, default=0) + 1


@dataclass(frozen=True)
class Ledger:
    lines: tuple[str, ...]
    items: tuple[LedgerItem, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)

    def item(self, item_id: str) -> LedgerItem | None:
        """The item with exactly this id, else the only one matching it case-insensitively."""
        for it in self.items:
            if it.id == item_id:
                return it
        folded = [it for it in self.items if it.id.casefold() == item_id.strip().casefold()]
        return folded[0] if len(folded) == 1 else None

    def section_text(self, item: LedgerItem) -> str:
        return "".join(self.lines[item.start : item.end])

    def attempt_containing(self, item: LedgerItem, needle: str) -> tuple[int, str] | None:
        """(number, text) of the first attempt in ``item`` whose block contains ``needle``."""
        starts = list(item.attempt_lines)
        for n, (num, first) in enumerate(zip(item.attempts, starts)):
            last = starts[n + 1] if n + 1 < len(starts) else _attempt_block_end(self.lines, first, item.end)
            block = "".join(self.lines[first:last])
            if needle in block:
                return num, block
        return None

    @property
    def newline(self) -> str:
        """The ledger's most common line ending ('\\n' when it has none)."""
        counts: dict[str, int] = {}
        for line in self.lines:
            e = _eol(line)
            if e:
                counts[e] = counts.get(e, 0) + 1
        return max(counts, key=lambda e: counts[e]) if counts else "\n"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _attempt_block_end(lines: tuple[str, ...] | list[str], first: int, end: int) -> int:
    """Where the attempt starting at ``first`` ends: at the first later non-blank line indented
    no deeper than its bullet (or the section end)."""
    base = _indent(lines[first])
    i = first + 1
    while i < end:
        bare = _bare(lines[i])
        if bare.strip() and _indent(bare) <= base:
            break
        i += 1
    while i - 1 > first and not _bare(lines[i - 1]).strip():
        i -= 1
    return i


def parse_ledger(text: str) -> Ledger:
    """Find every ``## [ID] Title`` item, its span, its Attempts History line and attempt numbers.

    Headings inside fenced code blocks (``` or ~~~) are not headings. An item runs until the next
    level-1 or level-2 heading.
    """
    lines = split_lines(text)
    heads: list[tuple[int, re.Match | None]] = []  # level-1/2 headings: (line, item match or None)
    in_fence = False
    for i, line in enumerate(lines):
        bare = _bare(line)
        if _FENCE.match(bare):
            in_fence = not in_fence
            continue
        if not in_fence and _HEADING_L12.match(bare):
            heads.append((i, _ITEM.match(bare)))

    items = []
    for n, (start, m) in enumerate(heads):
        if m is None:
            continue
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        history = None
        attempts: list[int] = []
        attempt_lines: list[int] = []
        fence = False
        for i in range(start + 1, end):
            bare = _bare(lines[i])
            if _FENCE.match(bare):
                fence = not fence
                continue
            if fence:
                continue
            if history is None and _HISTORY.match(bare):
                history = i
                continue
            am = _ATTEMPT.match(bare)
            if am:
                attempts.append(int(am.group(1)))
                attempt_lines.append(i)
        items.append(
            LedgerItem(
                id=m.group(1).strip(),
                title=m.group(2),
                start=start,
                end=end,
                history_line=history,
                attempts=tuple(attempts),
                attempt_lines=tuple(attempt_lines),
            )
        )
    return Ledger(lines=tuple(lines), items=tuple(items))


# --------------------------------------------------------------------------- the entry

_BUNDLE_MARK = re.compile(r"nb-evidence bundle `([^`\r\n]+)`")


def cause_observations(res: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    """One Observations/Hypotheses line per root and amplified key of the result."""
    out = []
    for kind, word in (("roots", "root"), ("amplified", "amplified")):
        for item in res.get(kind) or []:
            if not isinstance(item, dict):
                continue
            explains = list(item.get("explains") or [])
            text = (f"{word} {item.get('key')}: {ratio_label(ref, cand)}={fmt_ratio(item.get('ratio'))}, "
                    f"{item.get('reason') or ''}")
            if explains:
                text += f"; explains {key_list(explains, 6)}"
            out.append(one_line(text, 240))
    return out


def attempt_entry(manifest: Mapping[str, Any], attempt_no: int, date: str, owner: str, bundle_path: str,
                  manifest_sha256: str | None = None, diff_markdown: str | None = None) -> str:
    """One attempt entry in the ledger's own format (nanobragg-facts.md §6), '\\n'-terminated.

    The first line names the bundle id (``nb-evidence bundle `<id>```) so a second attach of the
    same bundle is recognised. ``diff_markdown`` (``attach --against``: bundle.diff's Markdown,
    made by the caller, which may import the diff) goes in as a ``Diff:`` field, indented into
    the attempt.
    """
    ref, cand = engines(manifest)
    lines = [
        _headline(manifest, ref, cand, attempt_no, date, owner),
        "    Metrics: " + "; ".join(_metrics(manifest, ref, cand)) + ".",
        "    Artifacts:",
        *_artifacts(manifest, bundle_path.rstrip("/") or bundle_path, manifest_sha256),
        "    Observations/Hypotheses:",
        *[f"      - {o}" for o in _observations(manifest, ref, cand)],
        *_diff_field(diff_markdown),
        "    Next Actions: (fill in)",
    ]
    return "\n".join(lines) + "\n"


def _diff_field(text: str | None) -> list[str]:
    """The diff's Markdown as a field of the attempt: every line indented under it (blank lines
    kept blank), so the attempt block holds all of it."""
    if not text:
        return []
    return ["    Diff:", *[f"      {line}".rstrip() for line in text.rstrip("\n").split("\n")]]


def _result(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    return manifest.get("result") or {}


def _chain(res: Mapping[str, Any]) -> Mapping[str, Any]:
    return res.get("chain") or {}


def _dict_or_none(x: Any) -> Mapping[str, Any] | None:
    return x if isinstance(x, dict) else None


def _failed(res: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in res.get("failed_commands") or [] if isinstance(f, dict)]


def _label(fd: Mapping[str, Any]) -> str:
    return key_label_prose(str(fd.get("key")), fd.get("component") or 0, fd.get("occurrence") or 0)


def _headline(manifest: Mapping[str, Any], ref: str, cand: str, attempt_no: int, date: str,
              owner: str) -> str:
    res = _result(manifest)
    spec = manifest.get("spec") or {}
    rl = ratio_label(ref, cand)
    fd = _dict_or_none(res.get("first_divergence"))
    final_ratio = _chain(res).get("final_ratio")
    where = [f"spec {spec.get('name', '?')}"]
    target = (manifest.get("target") or {}).get("name")
    if target:
        where.append(f"target {target}")
    pixel = spec.get("pixel")
    if isinstance(pixel, list) and len(pixel) == 2:
        where.append(f"pixel (slow {pixel[0]}, fast {pixel[1]})")
    if manifest.get("replay_of"):
        where.append(f"replay of {manifest['replay_of']}")
    head = f"nb-evidence bundle `{manifest.get('bundle_id', '?')}` ({', '.join(where)}): "
    verdict = res.get("verdict")
    if verdict == "divergence" and fd:
        summary = f"{cand} first differs from {ref} at {_label(fd)} ({rl} = {fmt_ratio(fd.get('ratio'))})"
    elif verdict == "parity" and res.get("status") != "partial":
        summary = f"{cand} matches {ref} on all {res.get('keys_compared', '?')} compared keys"
    else:
        why = [failed_text(f) for f in _failed(res)]
        summary = (", ".join(why) + "; " if why else "") + f"{res.get('keys_compared', '?')} keys compared"
    if final_ratio is not None:
        summary += f"; {FINAL_KEY} {rl} = {fmt_ratio(final_ratio)}"
    return (
        f"  * [{date}] Attempt #{attempt_no} ({owner}) — Result: {result_word(res, ref, cand)}. "
        f"{head}{summary}."
    )


def _metrics(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    res = _result(manifest)
    return [
        _divergence_metric(manifest, ref, cand),
        *_chain_metrics(manifest, ref, cand),
        _image_metrics(_dict_or_none(res.get("metrics")), ref, cand),
        f"keys compared={res.get('keys_compared', '?')}",
    ]


def _divergence_metric(manifest: Mapping[str, Any], ref: str, cand: str) -> str:
    res = _result(manifest)
    fd = _dict_or_none(res.get("first_divergence"))
    rl = ratio_label(ref, cand)
    if fd and (fd.get(ref) is None or fd.get(cand) is None):
        side, other = (cand, ref) if fd.get(cand) is None else (ref, cand)
        return f"first divergence {_label(fd)}: missing on {side} ({engine_label(other)}={fmt_plain(fd.get(other), 15)})"
    if fd:
        a, b = fmt_pair(fd.get(ref), fd.get(cand))
        rel_ = fd.get("rel_diff")
        return (
            f"first divergence {_label(fd)}: {engine_label(ref)}={a}, {cand}={b}, "
            f"{rl}={fmt_ratio(fd.get('ratio'))}" + (f" (rel diff {fmt_plain(rel_, 3)})" if rel_ is not None else "")
        )
    if res.get("verdict") == "parity":
        return f"no divergence over {res.get('keys_compared', '?')} keys (rtol {fmt_plain(tolerance(manifest, ''))})"
    return f"no divergence among the {res.get('keys_compared', '?')} keys both sides printed"


def _chain_metrics(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    chain = _chain(_result(manifest))
    rl = ratio_label(ref, cand)
    factors = [f for f in chain.get("factors") or [] if isinstance(f, dict)]
    m: list[str] = []
    differing = [f for f in factors if f.get("key") != FINAL_KEY and factor_differs(f, ref, cand, manifest)]
    both = [f for f in differing if f.get(ref) is not None and f.get(cand) is not None]
    if both:
        m.append(f"chain {rl}: " + ", ".join(f"{f.get('key')}={fmt_ratio(f.get('ratio'))}" for f in both))
    for side in (ref, cand):
        gone = [str(f.get("key")) for f in factors if f.get(side) is None]
        if gone:
            m.append(f"chain factors missing on {side}: {key_list(gone)}")
    tail = []
    if chain.get("final_ratio") is not None:
        tail.append(f"{FINAL_KEY} {rl}={fmt_ratio(chain.get('final_ratio'))}")
    if chain.get("product_of_ratios") is not None:
        tail.append(f"product of factor ratios={fmt_ratio(chain.get('product_of_ratios'))}")
    if tail:
        m.append(", ".join(tail))
    return m


def _image_metrics(metrics: Mapping[str, Any] | None, ref: str, cand: str) -> str:
    if not metrics:
        return "no images compared"
    img = [f"Correlation={fmt_plain(metrics.get('pearson'))}", f"sum_ratio={fmt_plain(metrics.get('sum_ratio'))}"]
    if metrics.get("rmse") is not None:
        img.append(f"RMSE={fmt_plain(metrics.get('rmse'))}")
    if metrics.get("peaks_matched") is not None:
        dist = metrics.get("mean_peak_distance")
        img.append(
            f"peaks matched={metrics.get('peaks_matched')}"
            + (f" (mean distance {fmt_plain(dist, 3)} px)" if dist is not None else "")
        )
    for eng in (ref, cand):
        st = metrics.get(eng)
        if isinstance(st, dict) and st.get("max") is not None:
            img.append(
                f"{engine_label(eng)} max_I={fmt_plain(st.get('max'))} at (slow {st.get('max_slow')}, fast {st.get('max_fast')})"
            )
    return ", ".join(img)


def _observations(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    obs = [*_consistency_observations(manifest, ref, cand), *_chain_observations(manifest, ref, cand),
           *cause_observations(_result(manifest), ref, cand),
           *_missing_observations(manifest, ref, cand), *_note_observations(manifest)]
    return obs or ["nothing beyond the metrics above"]


def _consistency_observations(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    consistency = _chain(_result(manifest)).get("consistency") or {}
    order = [ref, cand] + [e for e in consistency if e not in (ref, cand)]
    obs: list[str] = []
    ok = [e for e in order if isinstance(consistency.get(e), dict) and consistency[e].get("consistent") is True]
    if ok:
        who = " and ".join(f"{e}" for e in ok)
        each = "each " if len(ok) > 1 else ""
        obs.append(f"{who} trace{'s are' if len(ok) > 1 else ' is'} {each}self-consistent: the printed chain factors compose to the printed {FINAL_KEY}")
    for e in order:
        c = consistency.get(e)
        if not isinstance(c, dict):
            continue
        if c.get("consistent") is False:
            obs.append(
                f"{e} trace is {NOT_SELF_CONSISTENT}: its chain factors compose to {fmt_plain(c.get('product'))} "
                f"but it prints {FINAL_KEY}={fmt_plain(c.get('final'))} (final/product={fmt_ratio(c.get('ratio'))}); "
                f"it {PRINTS_UNUSED}"
            )
        elif c.get("consistent") is None and e in consistency:
            obs.append(f"{e} {not_checkable(key_list(list(c.get('missing') or [])))}")
    return obs


def _chain_observations(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    res = _result(manifest)
    chain = _chain(res)
    obs: list[str] = []
    fcd = res.get("first_chain_divergence")
    fcd_key = fcd.get("key") if isinstance(fcd, dict) else fcd
    if fcd_key:
        r = fcd.get("ratio") if isinstance(fcd, dict) else None
        if isinstance(fcd, dict) and (fcd.get(ref) is None or fcd.get(cand) is None):
            how = f" (missing on {cand if fcd.get(cand) is None else ref})"
        else:
            how = f" ({ratio_label(ref, cand)}={fmt_ratio(r)})" if r is not None else ""
        obs.append(f"first normalization-chain factor to differ: {fcd_key}{how}")
    por, final_ratio = chain.get("product_of_ratios"), chain.get("final_ratio")
    r = rel(por, final_ratio)
    if r is not None and r > CONSISTENCY.rtol:
        obs.append(
            f"product of the factor ratios ({fmt_ratio(por)}) differs from the {FINAL_KEY} ratio "
            f"({fmt_ratio(final_ratio)}): the printed factors do not account for the final difference"
        )
    return obs


def _missing_observations(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    missing: Mapping[str, list[str]] = _result(manifest).get("missing") or {}
    obs = []
    for eng in [ref, cand] + [e for e in missing if e not in (ref, cand)]:
        keys = list(missing.get(eng) or [])
        if keys:
            other = ref if eng == cand else cand
            obs.append(f"keys {other} printed and {eng} did not ({len(keys)}): {key_list(keys)}")
    return obs


def _note_observations(manifest: Mapping[str, Any]) -> list[str]:
    res = _result(manifest)
    notes: list[str] = []
    for n in list(res.get("notes") or []) + list(manifest.get("notes") or []):
        if isinstance(n, str) and n not in notes:
            notes.append(n)
    obs = []
    for f in _failed(res):
        step = str(f.get("step", ""))
        if not any(step and step in n for n in notes):
            obs.append(f"command {failed_text(f)}")
    return obs + [f"note: {one_line(n)}" for n in notes]


def _artifacts(manifest: Mapping[str, Any], bpath: str, manifest_sha256: str | None = None) -> list[str]:
    bundle_id = manifest.get("bundle_id", "?")
    bundle_line = f"      - `{bpath}/` - nb-evidence bundle {bundle_id}; check it with `nb-evidence verify {bpath}`"
    if manifest.get("reproduce"):
        bundle_line += f", re-run it with `{manifest['reproduce']}`"
    return [
        bundle_line,
        f"      - `{bpath}/report.md` - the report: verdict, first divergence, normalization-chain table, full key table, image metrics",
        f"      - `{bpath}/manifest.json` - the record: spec, shared arguments, environment, every command, every file's sha256"
        + (f"; {MANIFEST_DIGEST_LABEL} `{manifest_sha256}`" if manifest_sha256 else ""),
    ]


# What attach writes after the manifest line, and `verify --ledger` reads back: the manifest's own
# sha256 pins the one thing a bundle's file list cannot (manifest.json itself).
MANIFEST_DIGEST_LABEL = "manifest sha256"
_MANIFEST_DIGEST = re.compile(r"`([^`\r\n]+)/manifest\.json` - .*; manifest sha256 `([0-9a-f]{64})`")


@dataclass(frozen=True)
class LedgerBundle:
    """One bundle a ledger references by manifest digest, and what checking it found."""

    path: str
    recorded_sha256: str
    actual_sha256: str | None  # None: no manifest.json there
    intact: bool | None  # verify's answer; None when the manifest is missing or differs
    problem: str | None  # one line, None when all is well


def ledger_digests(text: str) -> list[tuple[str, str]]:
    """(bundle path as written, manifest sha256) for every attempt that records one. Pure."""
    return [(m.group(1), m.group(2)) for m in _MANIFEST_DIGEST.finditer(text)]


def _bundle_at(ledger: Path, path: str) -> Path:
    """Where attach meant: relative to the repository root around the ledger (display_path),
    else to the ledger's directory or the working directory."""
    from bundle.store.archive import find_repo_root

    if Path(path).is_absolute():
        return Path(path)
    bases = [b for b in (find_repo_root(ledger.parent), ledger.parent, Path.cwd()) if b is not None]
    return next((b / path for b in bases if (b / path / "manifest.json").is_file()), bases[0] / path)


def check_ledger_bundle(ledger: Path, path: str, recorded: str) -> LedgerBundle:
    from bundle.store.verify import verify_bundle

    where = _bundle_at(ledger, path)
    try:
        actual = sha256_file(where / "manifest.json")[1]
    except OSError:
        return LedgerBundle(path, recorded, None, None, f"{path}/manifest.json: missing")
    if actual != recorded:
        return LedgerBundle(path, recorded, actual, None,
                            f"{path}/manifest.json: sha256 {actual[:12]}… is not the {recorded[:12]}… the ledger recorded")
    checked = verify_bundle(where)
    first = (checked.claims + checked.schema_problems + checked.changed + checked.missing + checked.extra)
    return LedgerBundle(path, recorded, actual, checked.intact,
                        None if checked.intact else f"{path}: {first[0] if first else 'not intact'}")


def verify_ledger(fix_plan: Path | str) -> list[LedgerBundle]:
    """Every bundle the ledger references by manifest digest, checked (paths as attach wrote them)."""
    fix_plan = Path(fix_plan)
    try:
        text = fix_plan.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{fix_plan}: no such ledger file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{fix_plan}: cannot read: {getattr(e, 'strerror', None) or e}") from e
    return [check_ledger_bundle(fix_plan, p, d) for p, d in ledger_digests(text)]


# --------------------------------------------------------------------------- insertion


class Insertion(NamedTuple):
    """The ledger text after ``insert_attempt`` and whether anything was inserted."""

    text: str
    inserted: bool


def _field_block_end(lines: tuple[str, ...], item: LedgerItem) -> int:
    """Index just after the item's last top-level bullet field (with its continuation lines)."""
    last = None
    fence = False
    for i in range(item.start + 1, item.end):
        bare = _bare(lines[i])
        if _FENCE.match(bare):
            fence = not fence
            continue
        if not fence and _TOP_FIELD.match(bare):
            last = i
    if last is None:
        i = item.end
        while i - 1 > item.start and not _bare(lines[i - 1]).strip():
            i -= 1
        return i
    return _attempt_block_end(lines, last, item.end)


def unknown_item_message(source: str, item_id: str, ledger: Ledger) -> str:
    ids = ", ".join(ledger.ids) if ledger.items else "(no `## [ID] Title` items at all)"
    return f"{source}: no item [{item_id}]; items in this ledger: {ids}"


def insert_attempt(
    text: str, item_id: str, entry: str, bundle_id: str | None = None, source: str = "ledger"
) -> Insertion:
    """Insert ``entry`` as the newest attempt of ``item_id``: directly under its
    ``- Attempts History:`` line (created after the item's last bullet field when absent).

    The entry takes the line ending of the line it follows (the ledger's dominant one when that
    line has none). When the item already mentions ``bundle_id`` (default: the id the entry names
    as ``nb-evidence bundle `<id>```), nothing is inserted and ``inserted`` is False.
    Raises UserError naming the item ids the ledger has when ``item_id`` is not one of them.
    """
    ledger = parse_ledger(text)
    item = ledger.item(item_id)
    if item is None:
        raise UserError(unknown_item_message(source, item_id, ledger))
    if bundle_id is None:
        m = _BUNDLE_MARK.search(entry)
        bundle_id = m.group(1) if m else None
    if bundle_id and bundle_id in ledger.section_text(item):
        return Insertion(text, False)

    lines = list(ledger.lines)
    block = entry.replace("\r\n", "\n").replace("\r", "\n")
    if not block.endswith("\n"):
        block += "\n"
    if item.history_line is not None:
        after = item.history_line
    else:
        after = _field_block_end(ledger.lines, item) - 1
        block = "- Attempts History:\n" + block
    eol = _eol(lines[after]) or ledger.newline
    block = block.replace("\n", eol)
    if not _eol(lines[after]):
        # the line we follow is the file's last and has no line ending: keep it that way
        lines[after] = lines[after] + eol
        block = block[: -len(eol)]
    lines.insert(after + 1, block)
    return Insertion("".join(lines), True)


# --------------------------------------------------------------------------- attach


@dataclass(frozen=True)
class AttachResult:
    """What ``attach`` did. When ``already_attached``, ``entry`` is the existing attempt's text
    and ``attempt_no`` its number; nothing was written."""

    ledger: Path
    item: str
    bundle_id: str
    entry: str
    attempt_no: int
    written: bool
    already_attached: bool
    dry_run: bool


def write_atomic(path: Path, data: bytes, expect: bytes | None = None) -> None:
    """Replace ``path`` with ``data`` in one step, keeping its permission bits. When ``expect`` is
    given and the file no longer holds exactly those bytes, raise UserError instead of
    overwriting someone else's edit."""
    def unchanged() -> None:
        if expect is not None and Path(os.path.realpath(path)).read_bytes() != expect:
            raise UserError(f"{path}: changed while we were editing it; nothing written, run again")

    refuse_read_only(path)
    try:
        files.write_atomic(path, data, check=unchanged)
    except OSError as e:
        raise UserError(f"{e.filename or path}: cannot write: {e.strerror or e}") from None


def refuse_read_only(path: Path) -> None:
    """A ledger its owner made read-only is refused, not silently replaced by a rename (which
    needs only the directory to be writable, and would pass for root in any case)."""
    mode = os.stat(os.path.realpath(path)).st_mode
    if not mode & 0o222 or not os.access(path, os.W_OK):
        raise UserError(f"{path}: read-only; nothing written (make it writable to attach)")


def attach(
    bundle_dir: Path | str,
    fix_plan: Path | str,
    item: str,
    owner: str,
    dry_run: bool = False,
    today: Date | None = None,
    diff_markdown: str | None = None,
) -> AttachResult:
    """Log a bundle as the newest attempt of ``item`` in the ledger ``fix_plan``.

    The bundle must verify intact. The attempt number is one more than the item's highest.
    ``diff_markdown``: a diff against an older bundle to put in the entry (attach --against).
    Attaching a bundle the item already mentions writes nothing (``already_attached``).
    """
    bundle_dir = Path(bundle_dir)
    fix_plan = Path(fix_plan)
    require_intact(bundle_dir)
    manifest = load_manifest(bundle_dir)
    bundle_id = manifest["bundle_id"]
    raw = files.read_bytes(fix_plan, "ledger file", UserError)
    text = files.decode_utf8(raw, fix_plan, "ledger file", UserError)

    ledger = parse_ledger(text)
    it = ledger.item(item)
    if it is None:
        raise UserError(unknown_item_message(str(fix_plan), item, ledger))

    found = ledger.attempt_containing(it, bundle_id)
    if found is None and bundle_id in ledger.section_text(it):
        found = (0, "")
    if found is not None:
        num, block = found
        return AttachResult(fix_plan, it.id, bundle_id, block, num, False, True, dry_run)

    day = (today or Date.today()).isoformat()
    attempt_no = it.next_attempt
    entry = attempt_entry(manifest, attempt_no, day, owner, display_path(bundle_dir, fix_plan.parent),
                          manifest_sha256=sha256_file(bundle_dir / "manifest.json")[1],
                          diff_markdown=diff_markdown)
    new_text, inserted = insert_attempt(text, it.id, entry, bundle_id=bundle_id, source=str(fix_plan))
    if not inserted:  # pragma: no cover - the section check above already caught it
        return AttachResult(fix_plan, it.id, bundle_id, entry, attempt_no, False, True, dry_run)
    if not dry_run:
        write_atomic(fix_plan, new_text.encode("utf-8"), expect=raw)
    return AttachResult(fix_plan, it.id, bundle_id, entry, attempt_no, not dry_run, False, dry_run)
