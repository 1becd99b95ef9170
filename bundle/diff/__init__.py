"""Before and after: what changed between two bundles (or two suites) and whether anything
regressed (issue 14).

- model: the records (BundleDiff, SuiteDiff and their rows), with ``to_data`` for --json;
- results: per-key states, chain factors, image metrics and verdicts, compared (pure);
- changes: what changed between the two runs' inputs, each item named and digested (pure);
- compare: a BundleDiff from two manifests and their comparison rows (pure);
- suites: a SuiteDiff from two suite.json documents and their members' diffs (pure);
- load: ``diff_paths(a, b)``, the only I/O (verify, read manifests and tables);
- markdown: the Markdown a fix_plan attempt can hold;
- words: every word the diff writes.
"""
