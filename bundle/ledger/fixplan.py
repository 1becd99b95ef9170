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

import math
import os
import re
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from bundle.store.archive import display_path
from bundle.model.errors import UserError
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


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, digits: int = 6) -> str:
    """A number for a person: %.{digits}g; None -> n/a; ints as ints."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return "%.*g" % (digits, x)
    return str(x)


def _pair(a: Any, b: Any) -> tuple[str, str]:
    """Two numbers with just enough digits (6..17) that different values print differently."""
    for d in range(6, 18):
        sa, sb = _num(a, d), _num(b, d)
        if sa != sb or a == b or not (_finite(a) and _finite(b)):
            return sa, sb
    return _num(a, 17), _num(b, 17)


def _ratio(r: Any) -> str:
    """A ratio with enough digits that a ratio other than 1 does not print as 1."""
    if not _finite(r) or r == 1:
        return _num(r)
    for d in range(6, 18):
        s = _num(r, d)
        if float(s) != 1.0:
            return s
    return _num(r, 17)


def _label(engine: str) -> str:
    return "C" if engine == "c" else engine


def _rel(a: Any, b: Any) -> float | None:
    if not (_finite(a) and _finite(b)):
        return None
    m = max(abs(a), abs(b))
    return 0.0 if m == 0 else abs(a - b) / m


def _key_label(fd: Mapping[str, Any]) -> str:
    key = str(fd.get("key"))
    comp = fd.get("component") or 0
    occ = fd.get("occurrence") or 0
    label = key if comp == 0 else f"{key}[{comp}]"
    return label if occ == 0 else f"{label} (occurrence {occ + 1})"


def _engines(manifest: Mapping[str, Any]) -> tuple[str, str]:
    res = manifest.get("result") or {}
    eng = res.get("engines") or {}
    names = [e.get("name") for e in manifest.get("engines") or [] if isinstance(e, dict)]
    ref = eng.get("ref") or (names[0] if names else "c")
    cand = eng.get("cand") or (names[1] if len(names) > 1 else "py")
    return str(ref), str(cand)


def _tolerance(manifest: Mapping[str, Any], key: str) -> float:
    tol = (manifest.get("spec") or {}).get("tolerance") or {}
    per = (tol.get("keys") or {}).get(key) or {}
    r = per.get("rtol", tol.get("rtol", 1e-6))
    return float(r) if _finite(r) else 1e-6


def _factor_differs(f: Mapping[str, Any], ref: str, cand: str, manifest: Mapping[str, Any]) -> bool:
    return not f["matches"]


def _failed_text(fc: Mapping[str, Any]) -> str:
    step = fc.get("step", "?")
    if fc.get("timed_out"):
        return f"`{step}` timed out"
    if fc.get("exit_code") is None and fc.get("error"):
        return f"`{step}` could not run ({_one_line(str(fc['error']))})"
    if fc.get("error"):
        return f"`{step}` exited {fc.get('exit_code')} ({_one_line(str(fc['error']))})"
    return f"`{step}` exited {fc.get('exit_code')}"


def _one_line(s: str, limit: int = 160) -> str:
    return files.one_line(s, limit)


def _keylist(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _result_word(res: Mapping[str, Any], ref: str, cand: str) -> str:
    """``**PARITY**`` / ``**PARITY FAILURE** (first divergence at KEY)`` / ``**PARTIAL** (...)``."""
    verdict = res.get("verdict")
    status = res.get("status")
    fd = res.get("first_divergence")
    missing = res.get("missing") or {}
    failed = [f for f in res.get("failed_commands") or [] if isinstance(f, dict)]
    partial_bits = [_failed_text(f).replace("`", "") for f in failed]
    for eng in (cand, ref, *[e for e in missing if e not in (ref, cand)]):
        keys = missing.get(eng) or []
        if keys:
            partial_bits.append(f"{len(keys)} key{'s' if len(keys) != 1 else ''} missing on {eng}")
    if verdict == "divergence":
        at = _key_label(fd) if isinstance(fd, dict) else "an unnamed key"
        extra = f"; capture partial: {', '.join(partial_bits)}" if status == "partial" and partial_bits else ""
        return f"**PARITY FAILURE** (first divergence at {at}{extra})"
    if verdict == "parity" and status != "partial":
        n = res.get("keys_compared")
        return f"**PARITY** (all {n} compared keys within tolerance)" if n else "**PARITY**"
    if verdict == "parity":
        partial_bits.append("the keys both sides printed agree")
    return f"**PARTIAL** ({', '.join(partial_bits) or 'capture incomplete'})"


def attempt_entry(manifest: Mapping[str, Any], attempt_no: int, date: str, owner: str, bundle_path: str) -> str:
    """One attempt entry in the ledger's own format (nanobragg-facts.md §6), '\\n'-terminated.

    The first line names the bundle id (``nb-evidence bundle `<id>```) so a second attach of the
    same bundle is recognised.
    """
    res: Mapping[str, Any] = manifest.get("result") or {}
    ref, cand = _engines(manifest)
    ratio_label = f"{cand}/{ref}"
    bundle_id = manifest.get("bundle_id", "?")
    spec = manifest.get("spec") or {}
    chain = res.get("chain") or {}
    factors = [f for f in chain.get("factors") or [] if isinstance(f, dict)]
    fd = res.get("first_divergence") if isinstance(res.get("first_divergence"), dict) else None
    metrics = res.get("metrics") if isinstance(res.get("metrics"), dict) else None
    missing: Mapping[str, list[str]] = res.get("missing") or {}
    failed = [f for f in res.get("failed_commands") or [] if isinstance(f, dict)]
    final_ratio = chain.get("final_ratio")
    bpath = bundle_path.rstrip("/") or bundle_path

    # ---- headline
    where = [f"spec {spec.get('name', '?')}"]
    target = (manifest.get("target") or {}).get("name")
    if target:
        where.append(f"target {target}")
    pixel = spec.get("pixel")
    if isinstance(pixel, list) and len(pixel) == 2:
        where.append(f"pixel (slow {pixel[0]}, fast {pixel[1]})")
    if manifest.get("replay_of"):
        where.append(f"replay of {manifest['replay_of']}")
    head = f"nb-evidence bundle `{bundle_id}` ({', '.join(where)}): "
    verdict = res.get("verdict")
    if verdict == "divergence" and fd:
        summary = f"{cand} first differs from {ref} at {_key_label(fd)} ({ratio_label} = {_ratio(fd.get('ratio'))})"
    elif verdict == "parity" and res.get("status") != "partial":
        summary = f"{cand} matches {ref} on all {res.get('keys_compared', '?')} compared keys"
    else:
        why = [_failed_text(f) for f in failed]
        summary = (", ".join(why) + "; " if why else "") + f"{res.get('keys_compared', '?')} keys compared"
    if final_ratio is not None:
        summary += f"; I_pixel_final {ratio_label} = {_ratio(final_ratio)}"
    first = (
        f"  * [{date}] Attempt #{attempt_no} ({owner}) — Result: {_result_word(res, ref, cand)}. "
        f"{head}{summary}."
    )

    # ---- Metrics
    m: list[str] = []
    if fd and (fd.get(ref) is None or fd.get(cand) is None):
        side, other = (cand, ref) if fd.get(cand) is None else (ref, cand)
        m.append(f"first divergence {_key_label(fd)}: missing on {side} ({_label(other)}={_num(fd.get(other), 15)})")
    elif fd:
        a, b = _pair(fd.get(ref), fd.get(cand))
        rel = fd.get("rel_diff")
        m.append(
            f"first divergence {_key_label(fd)}: {_label(ref)}={a}, {cand}={b}, "
            f"{ratio_label}={_ratio(fd.get('ratio'))}" + (f" (rel diff {_num(rel, 3)})" if rel is not None else "")
        )
    elif verdict == "parity":
        m.append(f"no divergence over {res.get('keys_compared', '?')} keys (rtol {_num(_tolerance(manifest, ''))})")
    else:
        m.append(f"no divergence among the {res.get('keys_compared', '?')} keys both sides printed")
    differing = [f for f in factors if f.get("key") != "I_pixel_final" and _factor_differs(f, ref, cand, manifest)]
    both = [f for f in differing if f.get(ref) is not None and f.get(cand) is not None]
    if both:
        m.append(f"chain {ratio_label}: " + ", ".join(f"{f.get('key')}={_ratio(f.get('ratio'))}" for f in both))
    for side in (ref, cand):
        gone = [str(f.get("key")) for f in factors if f.get(side) is None]
        if gone:
            m.append(f"chain factors missing on {side}: {_keylist(gone)}")
    chain_tail = []
    if final_ratio is not None:
        chain_tail.append(f"I_pixel_final {ratio_label}={_ratio(final_ratio)}")
    if chain.get("product_of_ratios") is not None:
        chain_tail.append(f"product of factor ratios={_ratio(chain.get('product_of_ratios'))}")
    if chain_tail:
        m.append(", ".join(chain_tail))
    if metrics:
        img = [f"Correlation={_num(metrics.get('pearson'))}", f"sum_ratio={_num(metrics.get('sum_ratio'))}"]
        if metrics.get("rmse") is not None:
            img.append(f"RMSE={_num(metrics.get('rmse'))}")
        if metrics.get("peaks_matched") is not None:
            dist = metrics.get("mean_peak_distance")
            img.append(
                f"peaks matched={metrics.get('peaks_matched')}"
                + (f" (mean distance {_num(dist, 3)} px)" if dist is not None else "")
            )
        for eng in (ref, cand):
            st = metrics.get(eng)
            if isinstance(st, dict) and st.get("max") is not None:
                img.append(
                    f"{_label(eng)} max_I={_num(st.get('max'))} at (slow {st.get('max_slow')}, fast {st.get('max_fast')})"
                )
        m.append(", ".join(img))
    else:
        m.append("no images compared")
    m.append(f"keys compared={res.get('keys_compared', '?')}")

    # ---- Observations
    obs: list[str] = []
    consistency = chain.get("consistency") or {}
    engine_order = [ref, cand] + [e for e in consistency if e not in (ref, cand)]
    ok = [e for e in engine_order if isinstance(consistency.get(e), dict) and consistency[e].get("consistent") is True]
    if ok:
        who = " and ".join(f"{e}" for e in ok)
        each = "each " if len(ok) > 1 else ""
        obs.append(f"{who} trace{'s are' if len(ok) > 1 else ' is'} {each}self-consistent: the printed chain factors compose to the printed I_pixel_final")
    for e in engine_order:
        c = consistency.get(e)
        if not isinstance(c, dict):
            continue
        if c.get("consistent") is False:
            obs.append(
                f"{e} trace is NOT self-consistent: its chain factors compose to {_num(c.get('product'))} "
                f"but it prints I_pixel_final={_num(c.get('final'))} (final/product={_ratio(c.get('ratio'))}); "
                f"it prints numbers it did not use"
            )
        elif c.get("consistent") is None and e in consistency:
            miss = c.get("missing") or []
            obs.append(
                f"{e} self-consistency not checkable" + (f" (missing {_keylist(list(miss))})" if miss else "")
            )
    fcd = res.get("first_chain_divergence")
    fcd_key = fcd.get("key") if isinstance(fcd, dict) else fcd
    if fcd_key:
        r = fcd.get("ratio") if isinstance(fcd, dict) else None
        if isinstance(fcd, dict) and (fcd.get(ref) is None or fcd.get(cand) is None):
            how = f" (missing on {cand if fcd.get(cand) is None else ref})"
        else:
            how = f" ({ratio_label}={_ratio(r)})" if r is not None else ""
        obs.append(f"first normalization-chain factor to differ: {fcd_key}{how}")
    por = chain.get("product_of_ratios")
    rel = _rel(por, final_ratio)
    if rel is not None and rel > 1e-6:
        obs.append(
            f"product of the factor ratios ({_ratio(por)}) differs from the I_pixel_final ratio "
            f"({_ratio(final_ratio)}): the printed factors do not account for the final difference"
        )
    for eng in [ref, cand] + [e for e in missing if e not in (ref, cand)]:
        keys = list(missing.get(eng) or [])
        if keys:
            other = ref if eng == cand else cand
            obs.append(f"keys {other} printed and {eng} did not ({len(keys)}): {_keylist(keys)}")
    notes: list[str] = []
    for n in list(res.get("notes") or []) + list(manifest.get("notes") or []):
        if isinstance(n, str) and n not in notes:
            notes.append(n)
    for f in failed:
        step = str(f.get("step", ""))
        if not any(step and step in n for n in notes):
            obs.append(f"command {_failed_text(f)}")
    obs.extend(f"note: {_one_line(n)}" for n in notes)
    if not obs:
        obs.append("nothing beyond the metrics above")

    # ---- Artifacts
    reproduce = manifest.get("reproduce")
    bundle_line = f"      - `{bpath}/` - nb-evidence bundle {bundle_id}; check it with `nb-evidence verify {bpath}`"
    if reproduce:
        bundle_line += f", re-run it with `{reproduce}`"
    lines = [
        first,
        "    Metrics: " + "; ".join(m) + ".",
        "    Artifacts:",
        bundle_line,
        f"      - `{bpath}/report.md` - the report: verdict, first divergence, normalization-chain table, full key table, image metrics",
        f"      - `{bpath}/manifest.json` - the record: spec, shared arguments, environment, every command, every file's sha256",
        "    Observations/Hypotheses:",
        *[f"      - {o}" for o in obs],
        "    Next Actions: (fill in)",
    ]
    return "\n".join(lines) + "\n"


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

    files.write_atomic(path, data, check=unchanged)


def attach(
    bundle_dir: Path | str,
    fix_plan: Path | str,
    item: str,
    owner: str,
    dry_run: bool = False,
    today: Date | None = None,
) -> AttachResult:
    """Log a bundle as the newest attempt of ``item`` in the ledger ``fix_plan``.

    The bundle must verify intact. The attempt number is one more than the item's highest.
    Attaching a bundle the item already mentions writes nothing (``already_attached``).
    """
    bundle_dir = Path(bundle_dir)
    fix_plan = Path(fix_plan)
    require_intact(bundle_dir)
    manifest = load_manifest(bundle_dir)
    bundle_id = manifest["bundle_id"]
    try:
        raw = fix_plan.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{fix_plan}: no such ledger file") from None
    except OSError as e:
        raise UserError(f"{fix_plan}: cannot read: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{fix_plan}: not UTF-8 text (byte {e.start})") from e

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
    entry = attempt_entry(manifest, attempt_no, day, owner, display_path(bundle_dir, fix_plan.parent))
    new_text, inserted = insert_attempt(text, it.id, entry, bundle_id=bundle_id, source=str(fix_plan))
    if not inserted:  # pragma: no cover - the section check above already caught it
        return AttachResult(fix_plan, it.id, bundle_id, entry, attempt_no, False, True, dry_run)
    if not dry_run:
        write_atomic(fix_plan, new_text.encode("utf-8"), expect=raw)
    return AttachResult(fix_plan, it.id, bundle_id, entry, attempt_no, not dry_run, False, dry_run)
