#!/usr/bin/env bash
# Check a built nb-evidence image the way a capture runs it: the image's non-root user, no network,
# a read-only root file system with a tmpfs /tmp. No GPU needed (the CUDA image's check is of its
# pins, not of a device).
#
#   scripts/image-smoke.sh cpu  [IMAGE]     (default nb-evidence:cpu)
#   scripts/image-smoke.sh cuda [IMAGE]     (default nb-evidence:cuda)
#
# Both: `nb-evidence --help`; the users' port's run-time imports (torch, numpy, fabio, scipy,
# matplotlib); torch.compile of a small function on CPU, which makes inductor compile C++ with the
# image's g++ against Python.h (the cache under the tmpfs: TORCHINDUCTOR_CACHE_DIR=/tmp/inductor).
# cuda also: torch.__version__, torch.version.cuda and gcc/g++ against the pins the image records
# (NB_EXPECT_* in Dockerfile.cuda). Exit 1 on the first failure.
set -euo pipefail

FLAVOR="${1:?usage: $0 cpu|cuda [IMAGE]}"
IMAGE="${2:-nb-evidence:$FLAVOR}"
DOCKER="${DOCKER:-docker}"

run() {
    "$DOCKER" run --rm --network none --read-only --tmpfs /tmp:rw,exec,size=1g \
        -e TORCHINDUCTOR_CACHE_DIR=/tmp/inductor "$@"
}
step() { echo "image-smoke ($IMAGE): $*"; }

step "nb-evidence --help"
run "$IMAGE" --help >/dev/null

step "user, imports of the users' port"
run --entrypoint python "$IMAGE" -c '
import importlib.metadata, os, fabio, matplotlib, numpy, scipy, torch
assert os.getuid() != 0, "running as root"
print("uid", os.getuid(), "torch", torch.__version__, "numpy", numpy.__version__, "fabio", importlib.metadata.version("fabio"),
      "scipy", scipy.__version__, "matplotlib", matplotlib.__version__)'

step "torch.compile on CPU (inductor: g++ and Python.h)"
run --entrypoint python "$IMAGE" -c '
import torch
f = torch.compile(lambda x: (x * 2).sin())
y = f(torch.ones(3))
assert torch.allclose(y, (torch.ones(3) * 2).sin()), y
print(y)'

if [ "$FLAVOR" = cuda ]; then
    step "pins: torch, CUDA, gcc/g++"
    run --entrypoint bash "$IMAGE" -c '
set -eu
python -c "import os, torch; got = (torch.__version__, torch.version.cuda); want = (os.environ[\"NB_EXPECT_TORCH\"], os.environ[\"NB_EXPECT_CUDA\"]); print(\"torch\", got[0], \"cuda\", got[1]); assert got == want, (got, want)"
for cc in gcc g++; do v="$($cc -dumpfullversion)"; echo "$cc $v"; [ "$v" = "$NB_EXPECT_GCC" ]; done'
fi
step "ok"
