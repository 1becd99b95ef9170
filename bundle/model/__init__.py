"""The records everything else passes around: frozen dataclasses, the bundle format version,
our errors, and hashing. Imports nothing of ours."""
