"""A Scene: everything the engine needs, set up once in double precision from a Config and the
input files. Device- and dtype-free; the engine casts it when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import config as cfg
from .config import Config
from .crystal import Cell, crystal_cell, phi_angles, rotated_cells
from .geometry import Detector, detector_frame
from .hklgrid import HklGrid, build_grid, index_reach
from .readers import HklList, Matrix, read_hkl, read_matrix
from .vectors import magnitude

R_E_METERS = 2.8179403262e-15  # classical electron radius
R_E_SQR = 7.94079248018965e-30  # m², the contract's value (not recomputed from R_E_METERS)
CAPTURE_FRACTION = 1.0  # no thick detector


@dataclass(frozen=True)
class Scene:
    detector: Detector
    cell: Cell  # before any φ rotation
    cells: tuple[Cell, ...]  # one per φ step
    lambda_m: float
    lambda_A: float
    N: tuple[int, int, int]
    oversample: int
    steps: int
    fluence: float
    polar_K: float
    nopolar: bool
    grid: HklGrid | None  # None: no -hkl, every reflection gets default_F
    default_F: float
    roi: tuple[int, int, int, int]  # xmin xmax ymin ymax, inclusive, inside the detector
    trace_pixel: tuple[int, int] | None  # (slow, fast)


def build_scene(config: Config, matrix: Matrix | None, hkl: HklList | None) -> Scene:
    """Pure: the Scene for a Config and the already-read file contents."""
    detector = detector_frame(config)
    cell = crystal_cell(config, matrix)
    cells = tuple(rotated_cells(cell, config.spindle, phi_angles(config)))
    lambda_m = config.lambda_A * 1e-10
    grid = None
    if hkl is not None and len(hkl.F) > 0:
        reach = index_reach(tuple(magnitude(v) * 1e-10 for v in (cell.a, cell.b, cell.c)), lambda_m)  # type: ignore[arg-type]
        grid = build_grid(hkl, config.default_F, reach)
    return Scene(
        detector=detector,
        cell=cell,
        cells=cells,
        lambda_m=lambda_m,
        lambda_A=config.lambda_A,
        N=(config.Na, config.Nb, config.Nc),
        oversample=config.oversample,
        steps=cfg.steps(config),
        fluence=cfg.fluence(config),
        polar_K=config.polar_K,
        nopolar=config.nopolar,
        grid=grid,
        default_F=config.default_F,
        roi=cfg.roi_bounds(config),
        trace_pixel=config.trace_pixel,
    )


def load_scene(config: Config) -> Scene:
    """Read the files a Config names (MinibraggError naming the file on failure), then build."""
    matrix = read_matrix(config.mat) if config.mat is not None else None
    hkl = read_hkl(config.hkl) if config.hkl is not None else None
    return build_scene(config, matrix, hkl)
