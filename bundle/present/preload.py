"""The capture's heavy imports, done in a background thread while its first commands run.

Reading images, drawing and writing the bundle need numpy, Pillow, matplotlib's colour maps,
pyarrow and rocrate: about 0.8 s of imports on a 2-core machine, close to a tenth of a
full-detector capture if paid before the first command. Started first thing, they overlap the
input preparation and the C build (single-threaded, so a core is free). The first use of a
few of them costs again (the BLAS thread pool, fonts, colour tables, Pillow's PNG writer: about
0.1 s), so they are used once there too. ``wait`` joins the thread before the capture first
needs them; an import that failed there is simply imported again in the foreground, where its
error is raised as usual.
"""

from __future__ import annotations

import importlib
import threading

HEAVY = ("numpy", "bundle.analysis.metrics", "bundle.capture.images", "bundle.present.plots", "bundle.present.report",
         "bundle.present.tables", "bundle.present.crate", "bundle.present.manifest", "pyarrow.parquet")


class Preload:
    def __init__(self, modules: tuple[str, ...] = HEAVY):
        self._thread = threading.Thread(target=self._run, args=(modules,), name="nb-preload",
                                        daemon=True)
        self._thread.start()

    @staticmethod
    def _run(modules: tuple[str, ...]) -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - re-imported (and reported) in the foreground
                return
        try:
            _first_use()
        except Exception:  # noqa: BLE001 - only a warm-up: the real use reports any problem
            pass

    def wait(self) -> None:
        self._thread.join()


def _first_use() -> None:
    import io

    import numpy as np
    from PIL import Image

    from bundle.present import drawing

    v = np.ones(1 << 16)
    float(np.dot(v, v))
    for size in (10, 11, 12, 13, 14):
        drawing.font(size)
    drawing.font(12, bold=True)
    drawing.palette("inferno", drawing.BLACK)
    drawing.palette("RdBu_r", drawing.GREY)
    Image.new("RGB", (8, 8)).save(io.BytesIO(), **drawing.PNG)
