"""What a person or a machine reads: one vocabulary (labels, formats, pass lines, sentences), the
report, tables, plots, the RO-Crate and the manifest builder. Pure functions of a result: no I/O
beyond drawing into a given directory. Imports bundle.model, bundle.analysis and bundle.capture."""
