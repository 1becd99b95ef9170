"""nb-evidence: reproducible C-versus-PyTorch parity evidence."""

__version__ = "0.1.0"
