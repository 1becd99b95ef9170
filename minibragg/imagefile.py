"""Writing the raw float image: little-endian float32, fast index fastest, no header.

Atomic: written to PATH.tmp.<pid> and renamed over PATH, so a reader never sees half an image
and a failed run leaves no image behind.
"""

from __future__ import annotations

import os

import numpy as np


def write_floatfile(path: str, image: np.ndarray) -> None:
    data = np.ascontiguousarray(image, dtype="<f4")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            data.tofile(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
