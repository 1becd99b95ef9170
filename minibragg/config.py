"""Command line -> Config: a pure function over a frozen dataclass.

Flags are single-dash, nanoBragg style, in any order; a flag given twice: the last wins
(docs/minibragg.md, "Command line"). Parsing reads no file and imports no torch, so a bad
command line fails in milliseconds. Values keep the units they were typed in (mm, degrees, Å);
`geometry` and `crystal` convert them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .errors import MinibraggError
from .numbers import parse_float, parse_int
from .vectors import Vec3

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")

DEFAULT_FLUENCE = 1.25932015286227e29  # photons/m², nanoBragg's default


@dataclass(frozen=True)
class Config:
    """Everything one run of either engine is asked to do, as typed on the command line."""

    mat: str | None = None
    cell: tuple[float, float, float, float, float, float] | None = None
    misset_deg: Vec3 = (0.0, 0.0, 0.0)
    hkl: str | None = None
    default_F: float = 0.0
    Na: int = 1
    Nb: int = 1
    Nc: int = 1
    lambda_A: float = 1.0
    distance_mm: float = 100.0
    close_distance_mm: float | None = None
    pivot: str = "BEAM"  # BEAM or SAMPLE: the last of -distance / -close_distance / -twotheta
    pixel_mm: float = 0.1
    fpixels: int = 1024  # fast count (-detpixels_x)
    spixels: int = 1024  # slow count (-detpixels_y)
    Xbeam_mm: float | None = None  # None: half the detector's fast size
    Ybeam_mm: float | None = None
    fdet: Vec3 = (0.0, 0.0, 1.0)
    sdet: Vec3 = (0.0, -1.0, 0.0)
    odet: Vec3 = (1.0, 0.0, 0.0)
    beam: Vec3 = (1.0, 0.0, 0.0)
    spindle: Vec3 = (0.0, 0.0, 1.0)
    pix0_vector_m: Vec3 | None = None  # recorded, never used (CUSTOM/SAMPLE path, as nanoBragg)
    phi_deg: float = 0.0
    osc_deg: float = 0.0
    phisteps: int = 1
    flux: float = 0.0
    exposure: float = 1.0
    beamsize_mm: float = 0.1
    fluence_flag: float = DEFAULT_FLUENCE
    polar_K: float = 0.0
    nopolar: bool = False
    oversample: int = 1
    nonoise: bool = False
    nointerpolate: bool = False
    floatfile: str | None = None
    roi: tuple[int, int, int, int] | None = None  # xmin xmax ymin ymax, inclusive
    trace_pixel: tuple[int, int] | None = None  # (slow, fast)
    trace_flag: str = "-trace_pixel"  # which spelling set it, to name it in errors
    dtype: str = "float32"
    device: str = "cpu"


def fluence(config: Config) -> float:
    """photons/m²: flux·exposure/(beamsize·1e-3)² when a flux is given, else -fluence."""
    if config.flux != 0.0:
        beam_m = config.beamsize_mm * 1e-3
        return config.flux * config.exposure / (beam_m * beam_m)
    return config.fluence_flag


def beam_center_mm(config: Config) -> tuple[float, float]:
    """(Xbeam, Ybeam) in mm; the default is the detector's centre (count·pixel/2)."""
    xbeam = config.Xbeam_mm if config.Xbeam_mm is not None else config.fpixels * config.pixel_mm / 2.0
    ybeam = config.Ybeam_mm if config.Ybeam_mm is not None else config.spixels * config.pixel_mm / 2.0
    return xbeam, ybeam


def roi_bounds(config: Config) -> tuple[int, int, int, int]:
    """(xmin, xmax, ymin, ymax), inclusive, clipped to the detector (pixels outside it do not
    exist, so asking for them computes nothing more)."""
    if config.roi is None:
        return 0, config.fpixels - 1, 0, config.spixels - 1
    xmin, xmax, ymin, ymax = config.roi
    return max(xmin, 0), min(xmax, config.fpixels - 1), max(ymin, 0), min(ymax, config.spixels - 1)


def steps(config: Config) -> int:
    """sources · mosaic domains · φ steps · oversample² (one source, one domain here)."""
    return config.phisteps * config.oversample * config.oversample


# ---------------------------------------------------------------------------------------------
# The flag table. Each entry: how many values, and how to fold them into the dict of fields.

Fields = dict[str, object]
Handler = Callable[[str, list[str], Fields], None]


def _floats(flag: str, values: list[str]) -> list[float]:
    out = []
    for text in values:
        value = parse_float(text)
        if value is None:
            raise MinibraggError(f"{flag}: '{text}' is not a number")
        out.append(value)
    return out


def _ints(flag: str, values: list[str]) -> list[int]:
    out = []
    for text in values:
        value = parse_int(text)
        if value is None:
            raise MinibraggError(f"{flag}: '{text}' is not an integer")
        out.append(value)
    return out


def _float_field(name: str) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        fields[name] = _floats(flag, values)[0]

    return handle


def _vec_field(name: str, factor: float = 1.0) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        x, y, z = _floats(flag, values)
        fields[name] = (x / factor, y / factor, z / factor) if factor != 1.0 else (x, y, z)

    return handle


def _str_field(name: str) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        fields[name] = values[0]

    return handle


def _set_true(name: str) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        fields[name] = True

    return handle


def _cell(flag: str, values: list[str], fields: Fields) -> None:
    fields["cell"] = tuple(_floats(flag, values))


def _positive_int_field(*names: str) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        (n,) = _ints(flag, values)
        if n <= 0:
            raise MinibraggError(f"{flag}: must be > 0 (got {n})")
        for name in names:
            fields[name] = n

    return handle


def _distance(flag: str, values: list[str], fields: Fields) -> None:
    fields["distance_mm"] = _floats(flag, values)[0]
    fields["pivot"] = "BEAM"


def _close_distance(flag: str, values: list[str], fields: Fields) -> None:
    fields["close_distance_mm"] = _floats(flag, values)[0]
    fields["pivot"] = "SAMPLE"


def _twotheta(flag: str, values: list[str], fields: Fields) -> None:
    (angle,) = _floats(flag, values)
    if angle != 0.0:
        raise MinibraggError(f"{flag}: values other than 0 are not supported (got {values[0]})")
    fields["pivot"] = "SAMPLE"


def _zero_rotation(flag: str, values: list[str], fields: Fields) -> None:
    (angle,) = _floats(flag, values)
    if angle != 0.0:
        raise MinibraggError(f"{flag}: values other than 0 are not supported (got {values[0]})")


def _roi(flag: str, values: list[str], fields: Fields) -> None:
    fields["roi"] = tuple(_ints(flag, values))


def _trace(flag: str, values: list[str], fields: Fields) -> None:
    fields["trace_pixel"] = tuple(_ints(flag, values))
    fields["trace_flag"] = flag


def _choice(name: str, allowed: tuple[str, ...]) -> Handler:
    def handle(flag: str, values: list[str], fields: Fields) -> None:
        if values[0] not in allowed:
            raise MinibraggError(f"{flag}: '{values[0]}' is not one of {'|'.join(allowed)}")
        fields[name] = values[0]

    return handle


FLAGS: dict[str, tuple[int, Handler]] = {
    "-mat": (1, _str_field("mat")),
    "-cell": (6, _cell),
    "-misset": (3, _vec_field("misset_deg")),
    "-hkl": (1, _str_field("hkl")),
    "-default_F": (1, _float_field("default_F")),
    "-Na": (1, _positive_int_field("Na")),
    "-Nb": (1, _positive_int_field("Nb")),
    "-Nc": (1, _positive_int_field("Nc")),
    "-N": (1, _positive_int_field("Na", "Nb", "Nc")),
    "-lambda": (1, _float_field("lambda_A")),
    "-distance": (1, _distance),
    "-close_distance": (1, _close_distance),
    "-twotheta": (1, _twotheta),
    "-pixel": (1, _float_field("pixel_mm")),
    "-detpixels": (1, _positive_int_field("fpixels", "spixels")),
    "-detpixels_x": (1, _positive_int_field("fpixels")),
    "-detpixels_y": (1, _positive_int_field("spixels")),
    "-Xbeam": (1, _float_field("Xbeam_mm")),
    "-Ybeam": (1, _float_field("Ybeam_mm")),
    "-fdet_vector": (3, _vec_field("fdet")),
    "-sdet_vector": (3, _vec_field("sdet")),
    "-odet_vector": (3, _vec_field("odet")),
    "-beam_vector": (3, _vec_field("beam")),
    "-spindle_axis": (3, _vec_field("spindle")),
    "-pix0_vector": (3, _vec_field("pix0_vector_m")),
    "-pix0_vector_mm": (3, _vec_field("pix0_vector_m", factor=1000.0)),
    "-detector_rotx": (1, _zero_rotation),
    "-detector_roty": (1, _zero_rotation),
    "-detector_rotz": (1, _zero_rotation),
    "-phi": (1, _float_field("phi_deg")),
    "-osc": (1, _float_field("osc_deg")),
    "-phisteps": (1, _positive_int_field("phisteps")),
    "-flux": (1, _float_field("flux")),
    "-exposure": (1, _float_field("exposure")),
    "-beamsize": (1, _float_field("beamsize_mm")),
    "-fluence": (1, _float_field("fluence_flag")),
    "-polar": (1, _float_field("polar_K")),
    "-nopolar": (0, _set_true("nopolar")),
    "-oversample": (1, _positive_int_field("oversample")),
    "-nonoise": (0, _set_true("nonoise")),
    "-nointerpolate": (0, _set_true("nointerpolate")),
    "-floatfile": (1, _str_field("floatfile")),
    "-roi": (4, _roi),
    "-dump_pixel": (2, _trace),
    "-trace_pixel": (2, _trace),
    "-dtype": (1, _choice("dtype", DTYPES)),
    "-device": (1, _choice("device", DEVICES)),
}


def parse_args(argv: list[str]) -> Config:
    """The Config an argument list asks for; MinibraggError (one line, naming the flag) if the
    list is malformed or asks for something refused by the contract."""
    fields: Fields = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag not in FLAGS:
            raise MinibraggError(f"unknown flag '{flag}'")
        nargs, handler = FLAGS[flag]
        values = argv[i + 1 : i + 1 + nargs]
        if len(values) < nargs:
            plural = "value" if nargs == 1 else "values"
            raise MinibraggError(f"{flag} needs {nargs} {plural}, got {len(values)}")
        handler(flag, values, fields)
        i += 1 + nargs
    config = replace(Config(), **fields)
    _check(config)
    return config


def _check(config: Config) -> None:
    """Cross-field and range checks, named after the flag that carries the bad value."""
    if config.pixel_mm <= 0.0:
        raise MinibraggError(f"-pixel: pixel size must be > 0 (got {config.pixel_mm:g})")
    if config.flux != 0.0 and config.beamsize_mm <= 0.0:
        raise MinibraggError(f"-beamsize: must be > 0 when -flux is given (got {config.beamsize_mm:g})")
    if config.lambda_A <= 0.0:
        raise MinibraggError(f"-lambda: wavelength must be > 0 (got {config.lambda_A:g})")
    if config.mat is None and config.cell is None:
        raise MinibraggError("no crystal: give -mat FILE or -cell a b c alpha beta gamma")
    if config.roi is not None:
        xmin, xmax, ymin, ymax = roi_bounds(config)
        if xmin > xmax or ymin > ymax:
            raise MinibraggError(f"-roi: {' '.join(map(str, config.roi))} selects no pixel of the "
                                 f"{config.fpixels}x{config.spixels} detector")
    if config.trace_pixel is not None:
        slow, fast = config.trace_pixel
        if not (0 <= slow < config.spixels and 0 <= fast < config.fpixels):
            raise MinibraggError(
                f"{config.trace_flag}: pixel (slow {slow}, fast {fast}) is outside the "
                f"{config.spixels} slow x {config.fpixels} fast image")
