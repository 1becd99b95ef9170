"""Writing an offline comparison (the `compare --out` directory): its tables and JSON summary."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bundle.analysis.offline import LogComparison
from bundle.model.errors import UserError
from bundle.model.records import CaptureResult, EngineRun
from bundle.present.tables import chain_table, comparison_table, graph_table, traces_table
from bundle.store.writer import write_tables


def write_comparison(outcome: LogComparison, out: Path) -> None:
    """Tables + the JSON summary into a NEW directory (never into one that holds files)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: exists and is not an empty directory; nothing written")
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        cmp = outcome.comparison
        result = CaptureResult(
            bundle_id="", status="complete", verdict=outcome.summary["verdict"], spec={},
            target="offline", pixel=None,
            engines=(EngineRun(cmp.ref_engine, outcome.ref.prefix, outcome.ref, None),
                     EngineRun(cmp.cand_engine, outcome.cand.prefix, outcome.cand, None)),
            comparison=cmp, metrics=None, commands=(), environment={}, roots=outcome.roots)
        write_tables(staging, {"traces.parquet": traces_table(result),
                               "comparison.parquet": comparison_table(result),
                               "chain.parquet": chain_table(result),
                               "graph.parquet": graph_table(result)})
        (staging / "comparison.json").write_text(json.dumps(outcome.summary, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
