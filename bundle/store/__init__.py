"""The bundle on disk: the atomic writer, the manifest schema, verify and archive. Imports everything
below it (model, analysis, capture, present)."""
