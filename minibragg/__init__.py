"""minibragg: a small nanoBragg-compatible diffraction simulator, in two engines.

`minibragg/minibragg.c` (C) and this package (PyTorch, `python -m minibragg`) implement the same
contract, docs/minibragg.md, so that nb-evidence has a pair of engines whose traces and images
must agree. Modules, one job each:

- config     command line -> Config (frozen), strict number parsing in `numbers`
- readers    the A matrix and the HKL list; hklgrid puts the list on a dense grid
- geometry   the detector frame; crystal: the cell and its φ rotations; scene: both, together
- engine     the torch renderer (image + traced pixel); stats, trace: what gets printed
- imagefile  the atomic -floatfile writer; simulate: one run as data; __main__: the CLI
- inputs     `python -m minibragg.inputs --out DIR`: A.mat and scaled.hkl for the supervisor case
- supervisor the supervisor command of nanobragg-facts §2 (arguments, traced pixel, A matrix)
"""

__version__ = "0.1.0"
