"""A tmp minibragg checkout and a small suite over it, for the suite tests (real gcc, real torch,
real Dask). The suite's cases read different input files (A.mat, B.mat), so that changing one
input reruns exactly the runs whose arguments name it; one run turns on the polarization
factor's K term, where a fault can be injected into the PyTorch engine alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The sign of the K term in the PyTorch engine's polarization (only runs with -polar K != 0).
POLAR_FAULT = ("engine.py",
               "    return cos2t, 0.5 * (1.0 + cos2t_sqr - k.polar_K * torch.cos(2.0 * psi) * sin2t_sqr)\n",
               "    return cos2t, 0.5 * (1.0 + cos2t_sqr + k.polar_K * torch.cos(2.0 * psi) * sin2t_sqr)\n")

COMMON = ["-hkl", "scaled.hkl", "-nonoise", "-nointerpolate", "-oversample", "1", "-flux", "1e18",
          "-beamsize", "1.0", "-distance", "100", "-lambda", "0.9768", "-pixel", "0.172",
          "-Na", "10", "-Nb", "10", "-Nc", "10", "-phisteps", "1"]

SUITE = """name = "t"
target = "minibragg"

[thresholds]
corr_min = 0.999999
sum_ratio_min = 0.99999
sum_ratio_max = 1.00001

[inputs]
files = ["A.mat", "B.mat", "scaled.hkl"]

[tolerance]
rtol = 1e-6

[engines.py]
dtype = "float64"

[[cases]]
id = "a"
args = {a_args}

[[cases.runs]]
name = "d64"
args = ["-detpixels_x", "64", "-detpixels_y", "64"]

[[cases.runs]]
name = "polar"
args = ["-detpixels_x", "64", "-detpixels_y", "64", "-polar", "0.9"]

[[cases]]
id = "b"
args = {b_args}

[[cases.runs]]
name = "d72"
args = ["-detpixels_x", "72", "-detpixels_y", "72"]
pixel = [30, 30]
"""


def make_repo(root: Path, fault: bool = False) -> Path:
    """A minibragg checkout (the C engine, the PyTorch package, its inputs in the repo)."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    shutil.copytree(REPO / "minibragg", repo / "minibragg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "minibragg.inputs", "--out", str(repo)], check=True,
                   cwd=REPO, capture_output=True)
    shutil.copyfile(repo / "A.mat", repo / "B.mat")
    if fault:
        name, old, new = POLAR_FAULT
        text = (repo / "minibragg" / name).read_text()
        assert old in text, f"{name} no longer contains {old!r}: update this fault"
        (repo / "minibragg" / name).write_text(text.replace(old, new))
    return repo


def write_suite(path: Path) -> Path:
    import json

    a = json.dumps(["-mat", "A.mat", *COMMON])
    b = json.dumps(["-mat", "B.mat", *COMMON])
    path.write_text(SUITE.format(a_args=a, b_args=b))
    return path
