"""The ledger (docs/fix_plan.md): parse, write an attempt entry, insert it byte-exactly, attach."""

from __future__ import annotations

import os
import re
import stat
from datetime import date
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bundle.model.errors import BundleError, UserError
from bundle.ledger.fixplan import attach, attempt_entry, insert_attempt, parse_ledger, split_lines
from bundle.store.schema import load_manifest
from bundle_factory import DEFAULT_ID, make_bundle
from cli.ledger import attach as attach_cmd

TODAY = date(2026, 11, 27)

# A ledger modelled on nanobragg-facts.md §6: index table, items with every bullet field,
# attempts #26/#27 with nested lines, prose, a fenced block holding a heading-like line.
LEDGER = """\
# Fix Plan Ledger

Maintained by the parity team. Items are ordered by priority; attempts are newest first.

| ID | Title | Priority | Status |
| --- | --- | --- | --- |
| [CLI-FLAGS-003](#cli-flags-003-handle-nonoise-and-pix0_vector_mm) | Handle -nonoise and -pix0_vector_mm | High | in_progress |
| [AT-PARALLEL-012](#at-parallel-012-triclinic-parity) | Triclinic parity | Medium | in_planning |
| [PERF-007](#perf-007-trace-overhead) | Trace overhead | Low | in_progress |

---

## [CLI-FLAGS-003] Handle -nonoise and -pix0_vector_mm
- Spec/AT: specs/spec-a-cli.md §CLI flags; AT-CLI-002, AT-CLI-006
- Priority: High
- Status: in_progress (Phase J: scaling chain)
- Plan Reference: plans/active/cli-noise-pix0/plan.md
- First Divergence (if known): I_before_scaling — C 943654.809, PyTorch 7.59e10 (ratio 8.04e4).
- Next Actions (2025-10-06):
  1. Capture the supervisor command with `-trace_pixel 1039 685` in both engines.
  2. Compare F_latt components; see Attempt #27.
- Attempts History:
  * [2025-10-06] Attempt #27 (ralph) — Result: **PARITY FAILURE** (I_before_scaling mismatch). Intensity 124,538× too high.
    Metrics: Correlation=0.9978, sum_ratio=124,538, C max_I=446, Py max_I=5.411e7.
    Artifacts:
      - `reports/2025-10-cli-flags/phase_i/README.md` - phase I summary
      - `reports/2025-10-cli-flags/phase_i/trace_py_scaling.log` - PyTorch trace of pixel (1039, 685)
    Observations/Hypotheses:
      - F_latt_b differs by 46×; the harness re-typed -Nb.
      - Unlike Attempt #26 the float32 path ran to completion.
    Next Actions: re-run with the real command line.
  * [2025-10-05] Attempt #26 (galph) — Result: **PARTIAL** (float64 trace crash after 37 of 40 keys).
    Metrics: n/a
    Artifacts:
      - `reports/2025-10-cli-flags/phase_h/trace_c_scaling.log` - C trace
    Observations/Hypotheses:
      - `-dtype float64 -trace_pixel` raises a dtype error.
    Next Actions: file a bug.

Some prose under the item, written by hand after the fields.

## [AT-PARALLEL-012] Triclinic parity
- Spec/AT: AT-PARALLEL-012
- Priority: Medium
- Status: in_planning
- Plan Reference: plans/active/triclinic.md
- First Divergence (if known): none yet
- Next Actions: write the spec,
  then capture the triclinic case.

Prose after the fields of an item without attempts.

```
## [FAKE-1] not an item: inside a code fence
```

## [PERF-007] Trace overhead
- Priority: Low
- Status: in_progress
- Attempts History:

# Archive

Done items.
"""


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def write_ledger(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundles")


@pytest.fixture
def manifest(bundle: Path) -> dict:
    return load_manifest(bundle)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text", [LEDGER, crlf(LEDGER)], ids=["lf", "crlf"])
def test_parse_ledger(text: str) -> None:
    ledger = parse_ledger(text)
    assert ledger.ids == ("CLI-FLAGS-003", "AT-PARALLEL-012", "PERF-007")
    cli = ledger.item("CLI-FLAGS-003")
    assert cli.title == "Handle -nonoise and -pix0_vector_mm"
    assert cli.attempts == (27, 26) and cli.next_attempt == 28
    assert ledger.lines[cli.history_line].rstrip("\r\n") == "- Attempts History:"
    assert ledger.lines[cli.start].startswith("## [CLI-FLAGS-003]")
    assert ledger.lines[cli.end].startswith("## [AT-PARALLEL-012]")
    at = ledger.item("AT-PARALLEL-012")
    assert at.history_line is None and at.attempts == () and at.next_attempt == 1
    perf = ledger.item("PERF-007")
    assert perf.history_line is not None and perf.attempts == ()
    assert ledger.lines[perf.end].startswith("# Archive")
    assert ledger.item("cli-flags-003") is cli  # case-insensitive fallback
    assert ledger.newline == ("\r\n" if "\r\n" in text else "\n")


def test_split_lines_round_trips() -> None:
    for text in ["", "a", "a\n", "a\r\nb\rc\n\nd", "\n\n", "x\u2028y\n"]:
        assert "".join(split_lines(text)) == text
    assert split_lines("x\u2028y\n") == ["x\u2028y\n"]  # only \r, \n, \r\n end lines


# --------------------------------------------------------------------------- the entry


def test_entry_format_divergence(manifest: dict) -> None:
    entry = attempt_entry(manifest, 28, "2026-11-27", "ralph", f"bundles/{DEFAULT_ID}")
    lines = entry.split("\n")
    assert entry.endswith("\n") and lines[-1] == ""
    assert re.match(
        r"^  \* \[2026-11-27\] Attempt #28 \(ralph\) — Result: \*\*PARITY FAILURE\*\* "
        r"\(first divergence at F_cell\)\. .+\.$",
        lines[0],
    ), lines[0]
    assert f"nb-evidence bundle `{DEFAULT_ID}`" in lines[0]
    metrics = lines[1]
    assert metrics.startswith("    Metrics: ")
    assert "F_cell: C=100, py=100.03, py/c=1.0003" in metrics
    assert "I_before_scaling=1.0006" in metrics  # chain ratio of the diverging factor
    assert "Correlation=0.99999" in metrics and "sum_ratio=1.0006" in metrics
    assert "C max_I=10" in metrics
    assert lines[2] == "    Artifacts:"
    art = [l for l in lines if l.startswith("      - `bundles/")]
    assert [a.split("`")[1] for a in art] == [
        f"bundles/{DEFAULT_ID}/",
        f"bundles/{DEFAULT_ID}/report.md",
        f"bundles/{DEFAULT_ID}/manifest.json",
    ]
    assert all(" - " in a for a in art)
    i = lines.index("    Observations/Hypotheses:")
    assert lines[i + 1].startswith("      - ")
    assert "self-consistent" in entry
    assert lines[-2] == "    Next Actions: (fill in)"


def test_entry_parity_and_partial_wording(tmp_path: Path) -> None:
    par = load_manifest(make_bundle(tmp_path / "p", verdict="parity"))
    e = attempt_entry(par, 3, "2026-11-27", "me", "b")
    assert "Result: **PARITY** (all 17 compared keys within tolerance). " in e
    assert "first divergence" not in e.split("\n")[0]

    inc = load_manifest(make_bundle(tmp_path / "i", verdict="incomplete"))
    e = attempt_entry(inc, 4, "2026-11-27", "me", "b")
    first = e.split("\n")[0]
    assert "Result: **PARTIAL** (run-py exited 1, 9 keys missing on py)" in first
    assert "keys c printed and py did not (9)" in e
    assert "no images compared" in e


def test_entry_reports_a_trace_that_does_not_compose(tmp_path: Path) -> None:
    m = load_manifest(make_bundle(tmp_path, py_inconsistent=True, images=False))
    e = attempt_entry(m, 1, "2026-11-27", "me", "b")
    assert "py trace is NOT self-consistent" in e
    assert "final/product=2.5" in e
    assert "c trace is self-consistent" in e


def test_entry_shows_enough_digits_for_tiny_differences(manifest: dict) -> None:
    manifest["result"]["first_divergence"].update({"c": 1.0000001, "py": 1.0000002, "ratio": 1.0000001})
    e = attempt_entry(manifest, 1, "2026-11-27", "me", "b")
    assert "C=1.0000001, py=1.0000002, py/c=1.0000001" in e


def test_entry_survives_non_finite_values_as_strings(manifest: dict) -> None:
    manifest["result"]["first_divergence"].update({"c": 0.0, "py": 2.0, "ratio": "inf", "rel_diff": 1.0})
    manifest["result"]["chain"]["final_ratio"] = "nan"
    e = attempt_entry(manifest, 1, "2026-11-27", "me", "b")
    assert "py/c=inf" in e and "I_pixel_final py/c = nan" in e


# --------------------------------------------------------------------------- insertion


def _entry(manifest: dict, n: int = 28) -> str:
    return attempt_entry(manifest, n, "2026-11-27", "ralph", f"bundles/{DEFAULT_ID}")


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_insert_under_attempts_history_everything_else_identical(manifest: dict, eol: str) -> None:
    before = LEDGER.replace("\n", eol)
    entry = _entry(manifest)
    after, inserted = insert_attempt(before, "CLI-FLAGS-003", entry)
    assert inserted
    block = entry.replace("\n", eol)
    assert after.count(block) == 1
    assert after.replace(block, "", 1) == before  # nothing else changed, byte for byte
    anchor = "- Attempts History:" + eol
    assert after.index(block) == after.index(anchor) + len(anchor)  # newest first
    assert after.index(block) < after.index("* [2025-10-06] Attempt #27")
    if eol == "\r\n":
        assert re.search(r"(?<!\r)\n", after) is None
    assert parse_ledger(after).item("CLI-FLAGS-003").attempts == (28, 27, 26)
    assert parse_ledger(after).ids == parse_ledger(before).ids


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_insert_creates_attempts_history_after_the_last_field(manifest: dict, eol: str) -> None:
    before = LEDGER.replace("\n", eol)
    entry = _entry(manifest, 1)
    after, inserted = insert_attempt(before, "AT-PARALLEL-012", entry)
    assert inserted
    block = ("- Attempts History:\n" + entry).replace("\n", eol)
    assert after.replace(block, "", 1) == before
    anchor = "  then capture the triclinic case." + eol
    assert after.index(block) == after.index(anchor) + len(anchor)
    item = parse_ledger(after).item("AT-PARALLEL-012")
    assert item.attempts == (1,) and item.history_line is not None


def test_insert_into_empty_history(manifest: dict) -> None:
    after, inserted = insert_attempt(LEDGER, "PERF-007", _entry(manifest, 1))
    assert inserted and after.replace(_entry(manifest, 1), "", 1) == LEDGER
    assert parse_ledger(after).item("PERF-007").attempts == (1,)


def test_insert_keeps_a_missing_final_newline(manifest: dict) -> None:
    before = "## [X-1] Item\n- Status: open\n- Attempts History:"
    after, _ = insert_attempt(before, "X-1", _entry(manifest, 1))
    assert not after.endswith("\n")
    assert after == before + "\n" + _entry(manifest, 1)[:-1]
    before2 = "## [X-1] Item\r\n- Status: open"  # no history field, no final newline
    after2, _ = insert_attempt(before2, "X-1", _entry(manifest, 1))
    assert not after2.endswith("\n")
    assert after2 == before2 + "\r\n" + ("- Attempts History:\n" + _entry(manifest, 1)[:-1]).replace("\n", "\r\n")


def test_insert_same_bundle_twice_adds_nothing(manifest: dict) -> None:
    once, first = insert_attempt(LEDGER, "CLI-FLAGS-003", _entry(manifest, 28))
    twice, second = insert_attempt(once, "CLI-FLAGS-003", _entry(manifest, 29))
    assert first and not second and twice == once
    # the same bundle may still be logged under another item
    other, third = insert_attempt(once, "PERF-007", _entry(manifest, 1))
    assert third


def test_unknown_item_lists_the_ids(manifest: dict) -> None:
    with pytest.raises(UserError) as e:
        insert_attempt(LEDGER, "NOPE-9", _entry(manifest))
    msg = str(e.value)
    assert "NOPE-9" in msg and "\n" not in msg
    for item in ("CLI-FLAGS-003", "AT-PARALLEL-012", "PERF-007"):
        assert item in msg
    assert "FAKE-1" not in msg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.text(alphabet=st.sampled_from(list("ab #-*[]`\r\n\t")), max_size=60),
    tail=st.text(alphabet=st.sampled_from(list("ab #-*[]`\r\n\t")), max_size=60),
)
def test_insert_never_touches_surrounding_bytes(manifest: dict, head: str, tail: str) -> None:
    # any prose before the item and after it (no level-1/2 heading can start inside it)
    head = head.replace("#", "x").replace("`", "x") + "\n"  # an open fence would hide the item
    tail = "\n" + tail.replace("#", "x")
    before = head + "## [ITEM-1] Title\n- Status: open\n- Attempts History:\n  * [2025-01-01] Attempt #4 (x) — Result: ok\n" + tail
    entry = _entry(manifest, 5)
    after, inserted = insert_attempt(before, "ITEM-1", entry)
    assert inserted and after.replace(entry, "", 1) == before


# --------------------------------------------------------------------------- attach


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_attach_writes_once_and_only_once(bundle: Path, tmp_path: Path, eol: str) -> None:
    fix_plan = write_ledger(tmp_path / "repo" / "docs" / "fix_plan.md", LEDGER.replace("\n", eol))
    os.chmod(fix_plan, 0o640)
    before = fix_plan.read_bytes()
    r = attach(bundle, fix_plan, "CLI-FLAGS-003", "ralph", dry_run=False, today=TODAY)
    assert r.written and not r.already_attached and r.attempt_no == 28
    after = fix_plan.read_bytes()
    block = r.entry.replace("\n", eol).encode()
    assert after.count(block) == 1 and after.replace(block, b"", 1) == before
    assert r.entry.startswith("  * [2026-11-27] Attempt #28 (ralph) — Result: ")
    assert stat.S_IMODE(os.stat(fix_plan).st_mode) == 0o640
    assert [p.name for p in fix_plan.parent.iterdir()] == ["fix_plan.md"]  # no temp file left

    again = attach(bundle, fix_plan, "CLI-FLAGS-003", "ralph", dry_run=False, today=TODAY)
    assert again.already_attached and not again.written and again.attempt_no == 28
    assert DEFAULT_ID in again.entry
    assert fix_plan.read_bytes() == after


def test_attach_dry_run_writes_nothing(bundle: Path, tmp_path: Path) -> None:
    fix_plan = write_ledger(tmp_path / "fix_plan.md", LEDGER)
    st0 = os.stat(fix_plan)
    r = attach(bundle, fix_plan, "CLI-FLAGS-003", "ralph", dry_run=True, today=TODAY)
    assert not r.written and r.dry_run and r.attempt_no == 28
    assert "Attempt #28" in r.entry
    assert fix_plan.read_bytes() == LEDGER.encode()
    assert os.stat(fix_plan).st_mtime_ns == st0.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundles", "fix_plan.md"]


def test_attach_unknown_item_names_file_and_ids(bundle: Path, tmp_path: Path) -> None:
    fix_plan = write_ledger(tmp_path / "fix_plan.md", LEDGER)
    with pytest.raises(UserError) as e:
        attach(bundle, fix_plan, "NOPE-9", "ralph", dry_run=False, today=TODAY)
    assert str(fix_plan) in str(e.value) and "CLI-FLAGS-003, AT-PARALLEL-012, PERF-007" in str(e.value)
    assert fix_plan.read_bytes() == LEDGER.encode()


def test_attach_refuses_a_tampered_bundle_or_missing_ledger(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="ledger file not found"):
        attach(bundle, tmp_path / "none.md", "CLI-FLAGS-003", "ralph", dry_run=False, today=TODAY)
    fix_plan = write_ledger(tmp_path / "fix_plan.md", LEDGER)
    (bundle / "report.md").write_text("edited")
    with pytest.raises(BundleError, match="not intact"):
        attach(bundle, fix_plan, "CLI-FLAGS-003", "ralph", dry_run=False, today=TODAY)
    assert fix_plan.read_bytes() == LEDGER.encode()


def test_attach_names_the_bundle_relative_to_the_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    b = make_bundle(repo / "bundles")
    fix_plan = write_ledger(repo / "docs" / "fix_plan.md", LEDGER)
    r = attach(b, fix_plan, "PERF-007", "ralph", dry_run=True, today=TODAY)
    assert f"`bundles/{DEFAULT_ID}/report.md`" in r.entry


# --------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    app.command("attach")(attach_cmd)
    return app


def test_cli_attach(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("USER", "tester")
    fix_plan = write_ledger(tmp_path / "fix_plan.md", LEDGER)
    runner = CliRunner()
    dry = runner.invoke(_app(), ["attach", str(bundle), "--fix-plan", str(fix_plan), "--item", "CLI-FLAGS-003", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Attempt #28 (tester)" in dry.output and "dry run" in dry.output
    assert "[CLI-FLAGS-003]" in dry.output  # brackets are not eaten as rich markup
    assert fix_plan.read_bytes() == LEDGER.encode()

    done = runner.invoke(_app(), ["attach", str(bundle), "--fix-plan", str(fix_plan), "--item", "CLI-FLAGS-003", "--owner", "ann"])
    assert done.exit_code == 0 and "attached" in done.output
    assert "Attempt #28 (ann)" in fix_plan.read_text()

    again = runner.invoke(_app(), ["attach", str(bundle), "--fix-plan", str(fix_plan), "--item", "CLI-FLAGS-003"])
    assert again.exit_code == 0 and "already attached" in again.output

    bad = runner.invoke(_app(), ["attach", str(bundle), "--fix-plan", str(fix_plan), "--item", "NOPE"])
    assert isinstance(bad.exception, UserError)
