"""Export a bundle's evidence into the users' reports layout
(``reports/<YYYY-MM>-<slug>/phase_<x>/``, or any directory given).

Writes, and never overwrites (every target is checked before anything is written):

- ``trace_<engine>_scaling.log``: the trace lines (those starting with the engine's prefix) of
  each engine's run log, byte for byte (``trace_c_scaling.log``, ``trace_py_scaling.log``);
- ``scaling_chain.md``: the normalization chain in both engines with ratios, and each engine's
  self-consistency;
- ``README.md``: what these files are, and where the bundle, its manifest and the reproduce
  command are.

Rendering is pure (``export_files`` returns name -> bytes); ``export`` does the writing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from pathlib import Path
from typing import Any, Mapping

from bundle.analysis.chain import FINAL_KEY
from bundle.ledger.reading import engines, factor_differs
from bundle.model.errors import BundleError, UserError
from bundle.present.vocabulary import (CHAIN_PRODUCT, NOT_CHECKABLE, PRINTS_UNUSED, fmt_full,
                                       fmt_plain, fmt_ratio, plural, ratio_label, result_word)
from bundle.store.archive import display_path
from bundle.store.schema import MANIFEST_NAME, load_manifest
from bundle.store.verify import is_safe_relpath, require_intact
from bundle.model.files import write_atomic

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def trace_file_name(engine: str) -> str:
    return f"trace_{_SAFE.sub('_', engine)}_scaling.log"


def trace_lines(log: bytes, prefix: str) -> bytes:
    """The lines of ``log`` that start with ``prefix``, unchanged (each ends with a newline)."""
    want = prefix.encode("utf-8")
    out = []
    for line in log.splitlines(keepends=True):
        if line.startswith(want):
            out.append(line if line.endswith((b"\n", b"\r")) else line + b"\n")
    return b"".join(out)


def chain_markdown(manifest: Mapping[str, Any]) -> str:
    """The normalization-chain table of ``manifest.result.chain`` and the self-consistency rows."""
    res = manifest.get("result") or {}
    ref, cand = engines(manifest)
    out = [f"# Normalization chain: bundle {manifest.get('bundle_id', '?')}", ""]
    out.append(f"Reference engine `{ref}`, candidate `{cand}`. Result: {result_word(res, ref, cand)}.")
    out.append("")
    out += _factor_table(manifest, ref, cand)
    out += ["", "## Self-consistency", ""]
    out.append(f"Each engine's own factors composed, {CHAIN_PRODUCT}, against the {FINAL_KEY} it printed.")
    out.append("")
    out += _consistency_table((res.get("chain") or {}).get("consistency") or {}, ref, cand)
    return "\n".join(out) + "\n"


def _factor_table(manifest: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    res = manifest.get("result") or {}
    rl = ratio_label(ref, cand)
    chain = res.get("chain") or {}
    factors = [f for f in chain.get("factors") or [] if isinstance(f, dict)]
    out = []
    if factors:
        out += [f"| factor | {ref} | {cand} | {rl} | agrees |", "|---|---|---|---|---|"]
        for f in factors:
            differs = factor_differs(f, ref, cand, manifest)
            # all the digits a differing ratio needs; a ratio within tolerance prints as 1
            r = fmt_ratio(f.get("ratio")) if differs else fmt_plain(f.get("ratio"))
            out.append(
                f"| {f.get('key')} | {fmt_full(f.get(ref))} | {fmt_full(f.get(cand))} | {r} | {'no' if differs else 'yes'} |"
            )
    else:
        out.append("No chain factors were recorded (neither trace printed the chain keys).")
    out.append("")
    out.append(f"- Product of the per-factor ratios {rl} (steps inverted): {fmt_ratio(chain.get('product_of_ratios'))}")
    out.append(f"- {FINAL_KEY} ratio {rl}: {fmt_ratio(chain.get('final_ratio'))}")
    fcd = res.get("first_chain_divergence")
    fcd_key = fcd.get("key") if isinstance(fcd, dict) else fcd
    out.append(f"- First chain factor to differ: {fcd_key or 'none'}")
    return out


def _consistency_table(consistency: Mapping[str, Any], ref: str, cand: str) -> list[str]:
    if not consistency:
        return ["No self-consistency was recorded."]
    out = [f"| engine | composed product | printed {FINAL_KEY} | final/product | consistent |", "|---|---|---|---|---|"]
    order = [e for e in (ref, cand) if e in consistency] + [e for e in consistency if e not in (ref, cand)]
    notes = []
    for e in order:
        c = consistency[e] if isinstance(consistency[e], dict) else {}
        ok = c.get("consistent")
        word = "yes" if ok is True else ("**NO**" if ok is False else NOT_CHECKABLE)
        r = fmt_plain(c.get("ratio")) if ok is True else fmt_ratio(c.get("ratio"))
        out.append(f"| {e} | {fmt_full(c.get('product'))} | {fmt_full(c.get('final'))} | {r} | {word} |")
        if ok is False:
            notes.append(
                f"- {e} prints an {FINAL_KEY} its own factors do not compose to "
                f"(final/product = {fmt_ratio(c.get('ratio'))}): it {PRINTS_UNUSED}."
            )
        elif ok is None and c.get("missing"):
            notes.append(f"- {e} cannot be checked: it did not print {', '.join(c['missing'])}.")
    return out + ([""] + notes if notes else [])


def readme_markdown(manifest: Mapping[str, Any], bundle_path: str, traces: Mapping[str, tuple[str, str, int]],
                    skipped: list[str], manifest_sha256: str) -> str:
    """README.md for an export. ``traces``: file name -> (engine, bundle-relative log, lines)."""
    res = manifest.get("result") or {}
    ref, cand = engines(manifest)
    spec = manifest.get("spec") or {}
    bp = bundle_path.rstrip("/") or bundle_path
    about = [f"spec `{spec.get('name', '?')}`"]
    if spec.get("item"):
        about.append(f"item {spec['item']}")
    if spec.get("phase"):
        about.append(f"phase {spec['phase']}")
    if (manifest.get("target") or {}).get("name"):
        about.append(f"target {manifest['target']['name']}")
    pixel = spec.get("pixel")
    if isinstance(pixel, list) and len(pixel) == 2:
        about.append(f"pixel (slow {pixel[0]}, fast {pixel[1]})")
    prefixes = {e.get("name"): e.get("prefix") for e in manifest.get("engines") or [] if isinstance(e, dict)}
    out = [
        f"# nb-evidence export: {manifest.get('bundle_id', '?')}",
        "",
        f"Exported from the nb-evidence bundle `{bp}` ({', '.join(about)}).",
        f"Result: {result_word(res, ref, cand)}.",
        "",
        "| file | what it is |",
        "|---|---|",
    ]
    for name, (engine, log, n) in traces.items():
        out.append(
            f"| `{name}` | the `{prefixes.get(engine)}` lines of engine {engine}'s run log "
            f"(`{bp}/{log}`), unchanged: {plural(n, 'line')} |"
        )
    out.append("| `scaling_chain.md` | the normalization chain: each factor in both engines with its ratio, and each engine's self-consistency |")
    out.append("| `README.md` | this file |")
    if skipped:
        out += ["", *[f"- {s}" for s in skipped]]
    out += [
        "",
        "The bundle holds the full evidence:",
        "",
        f"- `{bp}/report.md` - the report: verdict, first divergence, chain table, full key table, image metrics",
        f"- `{bp}/{MANIFEST_NAME}` - the record (sha256 `{manifest_sha256}`): spec, shared arguments, "
        "environment, every command, every file's sha256",
        "",
        f"Check the bundle is unchanged: `nb-evidence verify {bp}`",
        "",
    ]
    if manifest.get("reproduce"):
        out += [f"Reproduce: `{manifest['reproduce']}`", ""]
    shared = (manifest.get("arguments") or {}).get("shared")
    if shared:
        out += ["The one argument list both engines were given:", "", "```", shlex.join(shared), "```", ""]
    return "\n".join(out)


def export_files(bundle_dir: Path | str, to: Path | str) -> dict[str, bytes]:
    """What ``export`` would write into ``to``: file name -> content. Reads the bundle only."""
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir)
    files: dict[str, bytes] = {}
    traces: dict[str, tuple[str, str, int]] = {}
    skipped: list[str] = []
    for eng in manifest.get("engines") or []:
        name, prefix, log = eng.get("name"), eng.get("prefix"), eng.get("log")
        if not log:
            skipped.append(f"engine {name} left no run log; no trace file for it")
            continue
        if not is_safe_relpath(log):
            raise BundleError(f"{bundle_dir / MANIFEST_NAME}: engine {name}'s log path {log!r} leaves the bundle")
        fname = trace_file_name(name)
        if fname in files:
            raise BundleError(f"{bundle_dir / MANIFEST_NAME}: two engines map to the same file name {fname}")
        try:
            data = (bundle_dir / log).read_bytes()
        except OSError as e:
            raise BundleError(f"{bundle_dir / log}: cannot read engine {name}'s log: {e.strerror or e}") from e
        lines = trace_lines(data, prefix)
        files[fname] = lines
        traces[fname] = (name, log, lines.count(b"\n"))
    files["scaling_chain.md"] = chain_markdown(manifest).encode("utf-8")
    msha = hashlib.sha256((bundle_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    bpath = display_path(bundle_dir, to)
    files["README.md"] = readme_markdown(manifest, bpath, traces, skipped, msha).encode("utf-8")
    return files


def export(bundle_dir: Path | str, to: Path | str) -> list[Path]:
    """Write the export of an intact bundle into the directory ``to`` (created when absent).

    Refuses, writing nothing, when any target file already exists (UserError naming it).
    Returns the written paths.
    """
    to = Path(to)
    require_intact(bundle_dir)
    files = export_files(bundle_dir, to)
    if to.exists() and not to.is_dir():
        raise UserError(f"{to}: exists and is not a directory")
    clash = [to / name for name in files if os.path.lexists(to / name)]
    if clash:
        more = f" (also {', '.join(p.name for p in clash[1:])})" if len(clash) > 1 else ""
        raise UserError(f"{clash[0]}: already exists{more}; export never overwrites, nothing written")
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{to}: cannot create directory: {e.strerror or e}") from e
    written: list[Path] = []
    try:
        for name, data in files.items():
            path = to / name
            write_atomic(path, data, exclusive=True)
            written.append(path)
    except FileExistsError as e:
        for p in written:
            p.unlink(missing_ok=True)
        raise UserError(f"{e.filename}: appeared while exporting; export never overwrites, nothing kept") from e
    except OSError as e:
        for p in written:
            p.unlink(missing_ok=True)
        raise UserError(f"{to}: cannot write: {e.strerror or e}") from e
    return written
