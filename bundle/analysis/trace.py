"""Trace parsing: turn an engine's stdout into a :class:`~bundle.model.records.Trace`.

A *key line* is ``PREFIX key v1 [v2 ...]`` (nanobragg-facts.md §5), split on whitespace:

- the first token is exactly the prefix (``TRACE_C:``; callers may give it with or without the
  colon), the second is the key, and at least one value token follows;
- value tokens are numbers as C prints them with ``%.15g`` / ``%d`` (``1``, ``-0``, ``2.5e-30``,
  ``1e+24``), plus ``nan``, ``-nan``, ``nan(...)``, ``inf``, ``-inf``, ``infinity`` in any case;
- if every value token parses, the line is an entry; if some parse and some do not, it is an
  entry with ``unparsed=True`` and no values (a finding, never a silent 0);
- if no value token parses (``TRACE_C: tracing pixel (...)``), or the first token is not the
  prefix (banners, ``N% done``, ``WARNING:``, ``TRACE:``, ``TRACE_CONFIG:``, other engines'
  prefixes), or there is no value token at all, the line is a *free line*: counted, not kept.

Files are streamed in blocks (no log is ever held in memory), split on ``\\n``, ``\\r\\n`` and
lone ``\\r`` (progress meters); only lines holding the prefix are decoded, as UTF-8 with
undecodable bytes replaced.
``lines_read == len(entries) + free_lines + truncated`` always holds: past ``MAX_OCCURRENCES``
of a key, or ``MAX_ENTRIES`` in all, key lines are counted as ``truncated``, not kept, and a line
longer than ``MAX_LINE`` is one free line read past in pieces, so memory is bounded whatever the
log holds.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Iterator

from bundle.model.errors import TraceError
from bundle.model.records import Trace, TraceEntry

# A number as C's printf prints it (ASCII only: Python's float() would also take "١٢" or "1_0").
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|(?i:nan)(?:\([0-9A-Za-z_]*\))?|(?i:inf|infinity))"
)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
def normalize_prefix(prefix: str) -> str:
    """``"TRACE_C"`` or ``"TRACE_C:"`` -> ``"TRACE_C:"``."""
    p = prefix.strip()
    if not p or any(c.isspace() for c in p):
        raise ValueError(f"trace prefix {prefix!r} must be one non-empty token")
    return p if p.endswith(":") else p + ":"


def parse_number(token: str) -> float | None:
    """The value of one printed number, or None when the token is not a number."""
    if not _NUMBER.fullmatch(token):
        return None
    lowered = token.lower()
    if "nan" in lowered:
        return float("-nan") if lowered.startswith("-") else float("nan")
    return float(token)


def _split_lines(items: Iterable[str | bytes]) -> Iterator[str]:
    """Each item is one line (its own line break optional) or several joined by line breaks."""
    for item in items:
        text = item.decode("utf-8", errors="replace") if isinstance(item, (bytes, bytearray)) else item
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith(("\n", "\r")):
            text = text[:-1]
        if "\n" in text or "\r" in text:
            yield from _LINE_BREAK.split(text)
        else:
            yield text


def _values(tokens: list[str]) -> tuple[list[float | None], int]:
    values = [parse_number(t) for t in tokens]
    return values, sum(v is not None for v in values)


# What a log may make us keep (the shipped trace has about 40 key lines, each key printed once).
# A log past these bounds is a trace printed inside a loop: its first occurrences are compared,
# the rest are counted in ``Trace.truncated`` and reported, so memory never grows with the log.
MAX_OCCURRENCES = 1000  # occurrences kept per key: both sides keep the same ones, so rows align
MAX_ENTRIES = 50_000  # key lines kept per log, whatever their keys
MAX_LINE = 1 << 20  # bytes; a longer line is one free line, counted and never held


def _entry(tokens: list[str], occurrence: int, position: int, line_no: int) -> TraceEntry | None:
    """The entry for a candidate key line, or None when none of its value tokens parses."""
    printed = tokens[2:]
    values, parsed = _values(printed)
    if parsed == 0:
        return None
    unparsed = parsed < len(printed)
    return TraceEntry(
        key=tokens[1],
        occurrence=occurrence,
        position=position,
        line_no=line_no,
        tokens=tuple(printed),
        values=() if unparsed else tuple(values),  # type: ignore[arg-type]
        is_int=tuple(bool(_INTEGER.fullmatch(t)) for t in printed),
        unparsed=unparsed,
    )


class _Collector:
    """Keeps the key lines of one prefix up to the bounds and counts the rest as truncated."""

    def __init__(self, prefix: str, max_occurrences: int, max_entries: int):
        self.prefix, self.max_occurrences, self.max_entries = prefix, max_occurrences, max_entries
        self.entries: list[TraceEntry] = []
        self.occurrences: dict[str, int] = {}
        self.capped: set[bytes] = set()  # keys at max_occurrences, as the log's bytes
        self.truncated = 0

    def add(self, line_no: int, line: str) -> None:
        prefix = self.prefix
        if not line.startswith(prefix) and not (line[:1].isspace() and line.lstrip().startswith(prefix)):
            return
        tokens = line.split()
        if len(tokens) < 3 or tokens[0] != prefix:
            return
        occurrence = self.occurrences.get(tokens[1], 0)
        if occurrence >= self.max_occurrences or len(self.entries) >= self.max_entries:
            # Only whether it is a key line is decided (one number suffices), not its values.
            self.truncated += any(map(_NUMBER.fullmatch, tokens[2:]))
            return
        entry = _entry(tokens, occurrence, len(self.entries), line_no)
        if entry is not None:
            self.occurrences[entry.key] = occurrence + 1
            self.entries.append(entry)
            if occurrence + 1 >= self.max_occurrences:
                self.capped.add(entry.key.encode("utf-8"))

    def all_truncated(self, keys: list[bytes]) -> bool:
        """Whether key lines with these keys would all be counted as truncated."""
        return len(self.entries) >= self.max_entries or self.capped.issuperset(keys)

    def trace(self, lines_read: int, source: str) -> Trace:
        if not self.entries:
            raise TraceError(f"{source}: no trace lines with prefix {self.prefix}")
        # Every line that is neither kept nor truncated is free, whether or not it was looked at.
        return Trace(prefix=self.prefix, entries=tuple(self.entries), lines_read=lines_read,
                     free_lines=lines_read - len(self.entries) - self.truncated,
                     truncated=self.truncated)


def parse_lines(lines: Iterable[str | bytes], prefix: str, *, source: str = "<lines>",
                max_occurrences: int = MAX_OCCURRENCES, max_entries: int = MAX_ENTRIES) -> Trace:
    """Parse the key lines carrying ``prefix`` out of ``lines`` (any iterable, consumed once).

    ``source`` names the input in the error raised when there is no key line at all. Key lines
    past ``max_occurrences`` of their key, or past ``max_entries`` kept, are counted as
    ``truncated`` and not kept.
    """
    collector = _Collector(normalize_prefix(prefix), max_occurrences, max_entries)
    lines_read = 0
    for lines_read, line in enumerate(_split_lines(lines), start=1):
        collector.add(lines_read, line)
    return collector.trace(lines_read, source)


# Key lines on bytes, one regular expression over a block of lines: a prefix token first, then a
# key, then at least one token that is a number (_NUMBER's pattern, itself ASCII). Tokens split on
# ASCII whitespace, which is str.split()'s on an ASCII line.
_WS = rb"[ \t\x0b\x0c\x1c-\x1f]"
_TOKEN = rb"[^ \t\n\x0b\x0c\x1c-\x1f]+"


def _key_lines(prefix: bytes | None) -> re.Pattern[bytes]:
    """Its one group: the prefix token (any ``TRACE_<word>:`` when None), else the key."""
    head = rb"(TRACE_[0-9A-Za-z_]+:)" + _WS + rb"+" + _TOKEN if prefix is None else (
        re.escape(prefix) + _WS + rb"+(" + _TOKEN + rb")")
    # Anchored on the line break before the line (not ^ in MULTILINE mode, which makes the
    # engine try every byte): search ``b"\\n" + lines``.
    return re.compile(rb"\n" + _WS + rb"*" + head + rb"(?:" + _WS + rb"+" + _TOKEN + rb")*?"
                      + _WS + rb"+(?:" + _NUMBER.pattern.encode() + rb")(?=" + _WS + rb"|\n)")


_ANY_PREFIX_LINES = _key_lines(None)
_CHUNK = 1 << 19  # bytes read at a time


class _LineScan:
    """A binary file's lines in blocks, and the numbered ones among them holding ``needle``.

    The file is read in chunks, line breaks normalized as universal newlines (``\\r\\n`` and a
    lone ``\\r`` end a line too), and lines found with ``bytes.find``, so a log of progress lines
    costs no Python step per line. A line longer than MAX_LINE bytes is counted and never held.
    ``lines`` counts the lines of the blocks passed to :meth:`found` or :meth:`skip`.
    """

    def __init__(self, fh, needle: bytes):
        self._fh = fh
        self.needle = needle
        self.lines = 0

    def blocks(self) -> Iterator[tuple[bytes, int, int]]:
        """(buffer, start, end): ``buf[start:end]`` is whole lines, each ending in ``\\n``
        (``start`` is past the tail of an over-long line, which only ``buf[:end]`` counts)."""
        carry, cr, skipping = b"", b"", False
        while True:
            data = self._fh.read(_CHUNK)
            raw = cr + data
            cr = b"\r" if data and raw.endswith(b"\r") else b""  # maybe half of a \r\n
            raw = raw[:-1] if cr else raw
            buf = carry + raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if not data:
                break
            last = buf.rfind(b"\n")
            carry = buf[last + 1:]
            if last >= 0:
                yield buf, buf.find(b"\n") + 1 if skipping else 0, last + 1
                skipping = False
            if len(carry) > MAX_LINE:
                carry, skipping = b"", True
        if buf or skipping:  # the last line (or a lone \r) ends the file
            buf = buf if buf.endswith(b"\n") else buf + b"\n"
            yield buf, buf.find(b"\n") + 1 if skipping else 0, len(buf)

    def dense(self, buf: bytes, start: int, end: int) -> int:
        """How many times the needle occurs in the block when it is on most lines, else 0."""
        n = buf.count(self.needle, start, end)
        return n if n * 64 > end - start else 0

    def skip(self, buf: bytes, end: int) -> None:
        self.lines += buf.count(b"\n", 0, end)

    def found(self, buf: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """The block's numbered lines that hold the needle; then the block is counted."""
        before = self.lines + buf.count(b"\n", 0, start)
        if self.dense(buf, start, end):
            # Mostly key lines (a trace printed in a loop): splitting beats finding line ends.
            needle = self.needle
            yield from ((no, line) for no, line in enumerate(buf[start:end].split(b"\n"), before + 1)
                        if needle in line)
        else:
            counted = start
            while (pos := buf.find(self.needle, start, end)) >= 0:
                line_start = buf.rfind(b"\n", 0, pos) + 1
                line_end = buf.find(b"\n", pos)
                before += buf.count(b"\n", counted, line_start)
                counted = line_start
                yield before + 1, buf[line_start:line_end]
                start = line_end + 1
        self.skip(buf, end)


def _open_binary(path: str | os.PathLike):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise TraceError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from exc


def detect_prefix(path: str | os.PathLike) -> str | None:
    """The most common ``TRACE_XXX:`` token that starts key lines in ``path``, or None.

    A line counts when its first token matches ``TRACE_<word>:`` and at least one token after
    the key parses as a number (so ``TRACE_CONFIG: tracing pixel (...)`` does not). Ties go to
    the prefix seen first. The file is streamed, lines tested on bytes (tokens split on ASCII
    whitespace) and a block of key lines by one regular expression.
    """
    counts: Counter[bytes] = Counter()
    with _open_binary(path) as fh:
        try:
            scan = _LineScan(fh, b"TRACE_")
            for buf, start, end in scan.blocks():
                if scan.dense(buf, start, end):
                    counts.update(_ANY_PREFIX_LINES.findall(b"\n" + buf[start:end]))
                else:
                    counts.update(m.group(1) for _, line in scan.found(buf, start, end)
                                  if (m := _ANY_PREFIX_LINES.match(b"\n" + line + b"\n")))
        except OSError as exc:
            raise TraceError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from exc
    if not counts:
        return None
    return counts.most_common(1)[0][0].decode("ascii")


def _parse_stream(fh, prefix: str, source: str) -> Trace:
    collector = _Collector(prefix, MAX_OCCURRENCES, MAX_ENTRIES)
    scan = _LineScan(fh, prefix.encode("utf-8"))
    key_lines = _key_lines(scan.needle)
    for buf, start, end in scan.blocks():
        n = scan.dense(buf, start, end)
        if n:
            # A loop's trace past its bounds: when every line holding the prefix is a key line
            # (ASCII, so the regex splits tokens as str.split does) of a truncated key, the block
            # is only counted, at the regex's speed instead of a Python step per line.
            block = buf[start:end]
            keys = key_lines.findall(b"\n" + block)
            if len(keys) == n and collector.all_truncated(keys) and block.isascii():
                collector.truncated += n
                scan.skip(buf, end)
                continue
        for line_no, line in scan.found(buf, start, end):
            collector.add(line_no, line.decode("utf-8", errors="replace"))
    return collector.trace(scan.lines, source)


def parse_file(path: str | os.PathLike, prefix: str | None = None) -> Trace:
    """Parse the trace in the log at ``path``, streaming it (bounds in the module docstring).

    Without ``prefix`` the most common ``TRACE_XXX:`` prefix is used (:func:`detect_prefix`).
    Raises TraceError when the file cannot be read or holds no key line for the prefix.
    """
    name = os.fspath(path)
    if prefix is None:
        prefix = detect_prefix(path)
        if prefix is None:
            raise TraceError(f"{name}: no trace lines with a TRACE_*: prefix")
    with _open_binary(path) as fh:
        try:
            return _parse_stream(fh, normalize_prefix(prefix), name)
        except OSError as exc:
            raise TraceError(f"{name}: cannot read ({exc.strerror or exc})") from exc
