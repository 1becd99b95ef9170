"""The one presentation vocabulary: every label, number format, pass line and sentence that
report.md, the terminal summary, the ledger attempt and the export write about a result.

Pure constants and functions over plain values (no I/O, no rich, no Markdown tables): each
writer composes these into its own layout, so a word changed here changes everywhere. The pass
thresholds are bundle.model.thresholds' (analysis decides pass/fail with them); this module only
words them. Three number styles exist because three audiences read them: ``fmt_value``/``fmt_short``
for report and terminal (an absent value is a dash), ``fmt_plain``/``fmt_ratio``/``fmt_pair`` for
the ledger's prose (an absent value is "n/a", a ratio never rounds to a false 1), ``fmt_json``
for numbers read back from a manifest (where nan/inf are strings).
"""

from __future__ import annotations

from typing import Any, Mapping

from bundle.analysis.chain import FINAL_KEY, SCALING_KEYS
from bundle.analysis.numbers import finite_number
from bundle.model.thresholds import CORRELATION_PASS, PEAK_DISTANCE_PASS

# --------------------------------------------------------------------------- marks and labels

OK, BAD, DASH = "✓", "✗", "—"
MARK_COLUMN = f"{OK}/{BAD}"  # the heading of a column of marks
ABSENT = "n/a"  # an absent number in the ledger's prose

PARITY, PARITY_FAILURE, PARTIAL = "PARITY", "PARITY FAILURE", "PARTIAL"

CORRELATION_LABEL = "correlation (Pearson)"
PEAK_DISTANCE_LABEL = "mean matched-peak distance (px)"


def verdict_word(verdict: str) -> str:
    """``parity`` -> ``PARITY``: the word a verdict is shown as."""
    return verdict.upper()


def ratio_label(ref: str, cand: str) -> str:
    return f"{cand}/{ref}"


def engine_label(engine: str) -> str:
    """The ledger's name for an engine: the users write the C side as "C"."""
    return "C" if engine == "c" else engine


def key_label(key: str, occurrence: int = 0, component: int | None = None) -> str:
    """``key``, ``key[i]`` when a component is named, ``key#n`` for a repeated key's n-th line."""
    label = key if component is None else f"{key}[{component}]"
    return label + (f"#{occurrence + 1}" if occurrence else "")


def key_label_prose(key: str, component: int = 0, occurrence: int = 0) -> str:
    """The ledger's spelling: ``key[i] (occurrence n)``, component 0 and occurrence 1 unsaid."""
    label = key if component == 0 else f"{key}[{component}]"
    return label if occurrence == 0 else f"{label} (occurrence {occurrence + 1})"


def key_list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … (+{len(keys) - limit} more)" if len(keys) > limit else "")


def one_line(s: str, limit: int = 160) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --------------------------------------------------------------------------- number formats


def fmt_value(x: float | None) -> str:
    """A trace value as the traces print it: %.15g (so integers stay integers); None is a dash."""
    return fmt_short(x, 15)


def fmt_short(x: float | None, digits: int = 6) -> str:
    if x is None:
        return DASH
    return f"{x:.{digits}g}"


def from_json(v: Any) -> float | None:
    """A manifest number (a JSON number, or "nan"/"inf"/"-inf") as a float; None if it is none."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return float(v)


def fmt_json(v: Any, digits: int = 15) -> str:
    """A manifest number at %.{digits}g; a dash when absent, the text itself when not a number."""
    x = from_json(v)
    if x is None:
        return DASH if v is None else str(v)
    return fmt_short(x, digits)


def fmt_plain(x: Any, digits: int = 6) -> str:
    """A number for the ledger's prose: %.{digits}g; None -> n/a; ints as ints, bools lower."""
    if x is None:
        return ABSENT
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "%.*g" % (digits, x)  # nan, inf, -inf as Python spells them
    return str(x)


def fmt_full(x: Any) -> str:
    """A value as the traces print it (%.15g, ints as ints), in the ledger's style."""
    return fmt_plain(x, 15) if isinstance(x, float) else fmt_plain(x)


def fmt_pair(a: Any, b: Any) -> tuple[str, str]:
    """Two numbers with just enough digits (6..17) that different values print differently."""
    for d in range(6, 18):
        sa, sb = fmt_plain(a, d), fmt_plain(b, d)
        if sa != sb or a == b or not (finite_number(a) and finite_number(b)):
            return sa, sb
    return fmt_plain(a, 17), fmt_plain(b, 17)


def fmt_ratio(r: Any) -> str:
    """A ratio with enough digits that a ratio other than 1 does not print as 1."""
    if not finite_number(r) or r == 1:
        return fmt_plain(r)
    for d in range(6, 18):
        s = fmt_plain(r, d)
        if float(s) != 1.0:
            return s
    return fmt_plain(r, 17)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# --------------------------------------------------------------------------- pass lines

# Rendered from analysis' one definition, so a moved threshold moves every pass line.
CORRELATION_PASS_LINE = f"≥ {CORRELATION_PASS}"
PEAK_DISTANCE_PASS_LINE = f"≤ {PEAK_DISTANCE_PASS:g} px"


def mark(flag: bool | None) -> str:
    """✓, ✗, or a dash when the pass does not apply."""
    return DASH if flag is None else OK if flag else BAD


# --------------------------------------------------------------------------- sentences

CHAIN_PRODUCT = " · ".join([f"{SCALING_KEYS[0]} / {SCALING_KEYS[1]}", *SCALING_KEYS[2:]])
CHAIN_FORMULA = f"{FINAL_KEY} = {CHAIN_PRODUCT}"
FIRST_DIVERGENCE_AT = "first divergence at"
FIRST_CHAIN_DIVERGENCE_AT = "first chain divergence at"
WITHIN_TOLERANCE = "within tolerance"
PRINTS_UNUSED = "prints numbers it did not use"
NOT_SELF_CONSISTENT = "NOT self-consistent"
SELF_CONSISTENCY_UNDETERMINED = "self-consistency undetermined"


def parity_sentence(keys_compared: int) -> str:
    """The report's parity line."""
    return f"all {keys_compared} keys compared agree {WITHIN_TOLERANCE}"


def parity_sentence_short(keys_compared: Any) -> str:
    """The terminal's parity line."""
    return f"{keys_compared} keys agree {WITHIN_TOLERANCE}"


def consistency_state(consistent: bool | None) -> str:
    return "consistent" if consistent else "undetermined" if consistent is None else "NOT consistent"


NOT_CHECKABLE = "not checkable"


def not_checkable(missing: str = "") -> str:
    """Self-consistency that cannot be checked, and the chain keys (listed) that made it so."""
    return f"self-consistency {NOT_CHECKABLE}" + (f" (missing {missing})" if missing else "")


def chain_totals(product_of_ratios: str, final_ratio: str) -> str:
    """The chain's two totals, in the report's words (formatted by the caller)."""
    return f"Product of factor ratios: {product_of_ratios}; {FINAL_KEY} ratio: {final_ratio}."


def chain_totals_short(product_of_ratios: str, final_ratio: str) -> str:
    """The chain's two totals, in the terminal's words."""
    return f"product of ratios {product_of_ratios}, final ratio {final_ratio}"


def failed_text(fc: Mapping[str, Any]) -> str:
    """A failed command of a manifest's result (``failed_commands``), in a few words."""
    step = fc.get("step", "?")
    if fc.get("timed_out"):
        return f"`{step}` timed out"
    if fc.get("exit_code") is None and fc.get("error"):
        return f"`{step}` could not run ({one_line(str(fc['error']))})"
    if fc.get("error"):
        return f"`{step}` exited {fc.get('exit_code')} ({one_line(str(fc['error']))})"
    return f"`{step}` exited {fc.get('exit_code')}"


def _prose_label(fd: Mapping[str, Any]) -> str:
    return key_label_prose(str(fd.get("key")), fd.get("component") or 0, fd.get("occurrence") or 0)


def _partial_bits(res: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    missing = res.get("missing") or {}
    failed = [f for f in res.get("failed_commands") or [] if isinstance(f, dict)]
    bits = [failed_text(f).replace("`", "") for f in failed]
    for eng in (cand, ref, *[e for e in missing if e not in (ref, cand)]):
        keys = missing.get(eng) or []
        if keys:
            bits.append(f"{plural(len(keys), 'key')} missing on {eng}")
    return bits


def result_word(res: Mapping[str, Any], ref: str, cand: str) -> str:
    """``**PARITY**`` / ``**PARITY FAILURE** (first divergence at KEY)`` / ``**PARTIAL** (...)``,
    from a manifest's result."""
    verdict, status = res.get("verdict"), res.get("status")
    fd = res.get("first_divergence")
    bits = _partial_bits(res, ref, cand)
    if verdict == "divergence":
        at = _prose_label(fd) if isinstance(fd, dict) else "an unnamed key"
        extra = f"; capture partial: {', '.join(bits)}" if status == "partial" and bits else ""
        return f"**{PARITY_FAILURE}** ({FIRST_DIVERGENCE_AT} {at}{extra})"
    if verdict == "parity" and status != "partial":
        n = res.get("keys_compared")
        return f"**{PARITY}** (all {n} compared keys {WITHIN_TOLERANCE})" if n else f"**{PARITY}**"
    if verdict == "parity":
        bits.append("the keys both sides printed agree")
    return f"**{PARTIAL}** ({', '.join(bits) or 'capture incomplete'})"


def attribution_sentence(explained_by: list[str], explained_ratio: str, final_ratio: str,
                         residual: str | None, selves: list[tuple[str, str, str]]) -> str:
    """How much of the final ratio the differing chain factors explain (roots' chain attribution);
    ``selves``: (engine, product, final) for each engine when a residual is left unexplained."""
    line = (f"Chain: {', '.join(explained_by)} explain {explained_ratio} of the {FINAL_KEY} ratio "
            f"{final_ratio}")
    if residual is None:
        return line + "."
    composed = "; ".join(f"{e}'s printed factors compose to {p} but it prints {f}"
                         for e, p, f in selves)
    return line + f"; the residual {residual} is not explained by the printed factors ({composed})."


# A replay run with --trust carries this note; the report shows it under the title (issue 11).
TRUSTED_NOTE = ("replayed with --trust: commands this checkout would not run were run as the "
                "manifest recorded them")
