"""Every word a diff writes (the terminal, the Markdown and gate's lines), in one place."""

from __future__ import annotations

from bundle.present.vocabulary import BAD, DASH, OK

FIXED, REGRESSED, STILL_FAILING, UNCHANGED = "fixed", "regressed", "still failing", "unchanged"
APPEARED, GONE = "appeared", "gone"
TRANSITIONS = (FIXED, REGRESSED, STILL_FAILING, UNCHANGED, APPEARED, GONE)

NOT_REPRODUCIBLE = "same inputs, different results: not reproducible"
NOTHING_CHANGED = "nothing changed: same inputs, same results"
INPUTS_CHANGED = "what changed between the two runs"
SAME_INPUTS = "no input changed"
NOTHING_REGRESSED = "nothing regressed"
ONLY_BEFORE, ONLY_AFTER = "only before", "only after"

# Change categories, in the order they are listed.
CATEGORIES = ("engine source", "engine binary", "arguments", "spec", "input", "env", "tool",
              "compiler", "python", "torch", "container image", "repository")


def status_mark(ok: bool | None) -> str:
    return DASH if ok is None else OK if ok else BAD


def transition_of(before: bool | None, after: bool | None) -> str:
    """A key's transition from its status before and after (None: absent on that side)."""
    if before is None and after is None:
        return UNCHANGED
    if before is None:
        return APPEARED
    if after is None:
        return GONE
    if before and not after:
        return REGRESSED
    if after and not before:
        return FIXED
    return STILL_FAILING if not after else UNCHANGED


def regression_line(name: str, before: str, after: str) -> str:
    """One line per regression (gate's stderr, the diff's summary)."""
    return f"regressed: {name}: {before} → {after}"


def digest_short(sha: str | None) -> str:
    return DASH if not sha else sha[:12]
