"""`python -m minibragg ARGS`: the PyTorch engine's command line.

The only place that prints or exits: a MinibraggError becomes one line
`minibragg: error: ...` on stderr and exit status 2, with no traceback and no image.
"""

from __future__ import annotations

import os
import sys

# Some machines load two OpenMP runtimes (torch's and MKL's); nanoBragg's users set this always.
os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "TRUE")
# minibragg runs on cpu or cuda only, so torch need not look for out-of-tree device backends at
# import: that scan reads every installed distribution's entry points, measured here at 0.3-0.5 s
# of a ~2 s `import torch` in a virtual environment of ~60 packages. Set it to 1 to scan anyway.
os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")

from .config import parse_args  # noqa: E402
from .errors import MinibraggError  # noqa: E402
from .simulate import prepare, run, warnings_for  # noqa: E402

TRACE_PREFIX = "TRACE_PY:"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        config = parse_args(args)
        scene = prepare(config)
    except MinibraggError as exc:
        print(f"minibragg: error: {exc}", file=sys.stderr)
        return exc.exit_code

    from .imagefile import write_floatfile
    from .stats import stats_lines
    from .trace import trace_lines

    print(f"minibragg PyTorch engine (dtype={config.dtype}, device={config.device})")
    for line in warnings_for(scene):
        print(line)
    sys.stdout.flush()
    result = run(config, scene)
    if result.trace is not None:
        assert config.trace_pixel is not None
        for line in trace_lines(TRACE_PREFIX, config.trace_pixel, result.trace):
            print(line)
    for line in stats_lines(result.stats):
        print(line)
    if config.floatfile is not None:
        try:
            write_floatfile(config.floatfile, result.image)
        except OSError as exc:
            print(f"minibragg: error: -floatfile {config.floatfile}: cannot write "
                  f"({exc.strerror or exc})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
