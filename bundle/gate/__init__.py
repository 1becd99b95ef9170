"""The CI gate (issue 14): capture the baseline's spec (or suite) on the current checkout, diff
the baseline against the new run, and fail on any regression not allowed.

- choose: which spec or suite to capture, and the sentence saying why;
- run: ``run_gate(GateRequest) -> GateOutcome`` and the step summary's Markdown.
"""
