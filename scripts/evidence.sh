#!/usr/bin/env bash
# `make evidence`: the supervisor spec through the bundled minibragg pair, inside the pinned
# container when a Docker engine answers, natively otherwise (saying so). Ends with the bundle's
# path and verdict (printed by `nb-evidence capture`).
set -u
PY=${PY:-.venv/bin/python}
SPEC=${SPEC:-manifests/cli-flags-003-phase-j.toml}
if docker info >/dev/null 2>&1; then
  echo "nb-evidence: a Docker engine answers; capturing inside the pinned image" >&2
  make --no-print-directory image >&2 || { echo "nb-evidence: image build failed (see above)" >&2; exit 2; }
  exec "$PY" -m cli capture "$SPEC" --in-container
else
  echo "nb-evidence: no Docker engine answers; capturing natively on this machine" >&2
  exec "$PY" -m cli capture "$SPEC" --native
fi
