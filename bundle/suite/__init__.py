"""Suites: a port's whole parity matrix (many runs, each a normal capture) on a Dask executor,
resumable by run key, with the drill-down from a failing image to its first divergence.

Data flow: source (a TOML suite or the upstream YAML) -> model.Suite -> runs as member captures
(task, on the executor) -> model.RunOutcome per run -> the suite bundle (suite.json, suite.parquet,
report.md, plots/matrix.png, RO-Crate). Imports everything below it (pipeline, replay, store,
present, ...); bundle.diff, bundle.gate and bundle.bisect import it, never the reverse.
"""
