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

Files are streamed line by line (a 100 MB log is never held in memory), decoded as UTF-8 with
undecodable bytes replaced, and split on ``\\n``, ``\\r\\n`` and lone ``\\r`` (progress meters).
``lines_read == len(entries) + free_lines`` always holds.
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
_PREFIX_TOKEN = re.compile(r"TRACE_[0-9A-Za-z_]+:")
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


def parse_lines(lines: Iterable[str | bytes], prefix: str, *, source: str = "<lines>") -> Trace:
    """Parse the key lines carrying ``prefix`` out of ``lines`` (any iterable, consumed once).

    ``source`` names the input in the error raised when there is no key line at all.
    """
    prefix = normalize_prefix(prefix)
    entries: list[TraceEntry] = []
    occurrences: dict[str, int] = {}
    lines_read = 0
    free = 0
    for line_no, line in enumerate(_split_lines(lines), start=1):
        lines_read = line_no
        if not line.startswith(prefix) and not (line[:1].isspace() and line.lstrip().startswith(prefix)):
            free += 1
            continue
        tokens = line.split()
        if len(tokens) < 3 or tokens[0] != prefix:
            free += 1
            continue
        key, printed = tokens[1], tokens[2:]
        values, parsed = _values(printed)
        if parsed == 0:
            free += 1
            continue
        occurrence = occurrences.get(key, 0)
        occurrences[key] = occurrence + 1
        unparsed = parsed < len(printed)
        entries.append(
            TraceEntry(
                key=key,
                occurrence=occurrence,
                position=len(entries),
                line_no=line_no,
                tokens=tuple(printed),
                values=() if unparsed else tuple(values),  # type: ignore[arg-type]
                is_int=tuple(bool(_INTEGER.fullmatch(t)) for t in printed),
                unparsed=unparsed,
            )
        )
    if not entries:
        raise TraceError(f"{source}: no trace lines with prefix {prefix}")
    return Trace(prefix=prefix, entries=tuple(entries), lines_read=lines_read, free_lines=free)


def _open_text(path: str | os.PathLike):
    try:
        # newline=None: universal newlines, so CRLF and lone CR (progress meters) both end a line.
        return open(path, "r", encoding="utf-8", errors="replace", newline=None)
    except OSError as exc:
        raise TraceError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from exc


def detect_prefix(path: str | os.PathLike) -> str | None:
    """The most common ``TRACE_XXX:`` token that starts key lines in ``path``, or None.

    A line counts when its first token matches ``TRACE_<word>:`` and at least one token after
    the key parses as a number (so ``TRACE_CONFIG: tracing pixel (...)`` does not). Ties go to
    the prefix seen first. The file is streamed.
    """
    counts: Counter[str] = Counter()
    with _open_text(path) as fh:
        try:
            for line in fh:
                stripped = line.lstrip()
                if not stripped.startswith("TRACE_"):
                    continue
                tokens = stripped.split()
                if len(tokens) < 3 or not _PREFIX_TOKEN.fullmatch(tokens[0]):
                    continue
                if any(parse_number(t) is not None for t in tokens[2:]):
                    counts[tokens[0]] += 1
        except OSError as exc:
            raise TraceError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from exc
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def parse_file(path: str | os.PathLike, prefix: str | None = None) -> Trace:
    """Parse the trace in the log at ``path``, streaming it.

    Without ``prefix`` the most common ``TRACE_XXX:`` prefix is used (:func:`detect_prefix`).
    Raises TraceError when the file cannot be read or holds no key line for the prefix.
    """
    name = os.fspath(path)
    if prefix is None:
        prefix = detect_prefix(path)
        if prefix is None:
            raise TraceError(f"{name}: no trace lines with a TRACE_*: prefix")
    with _open_text(path) as fh:
        try:
            return parse_lines(fh, prefix, source=name)
        except OSError as exc:
            raise TraceError(f"{name}: cannot read ({exc.strerror or exc})") from exc
