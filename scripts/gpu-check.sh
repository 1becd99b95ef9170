#!/usr/bin/env bash
# GPU check, for a machine with a CUDA device (never CI): the supervisor spec captured through
# nb-evidence with the PyTorch engine on CUDA (float64, then float32) against the C engine, the
# CUDA tests, and engine timings. Run from the repo root with a python3 that has torch+CUDA;
# results go to $OUT (default /tmp/nb-gpu): one JSON summary and one report.md per dtype.
set -u
OUT=${OUT:-/tmp/nb-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
python3 -m pytest -q -p no:cacheprovider tests/test_minibragg_py.py tests/test_minibragg_parity.py 2>&1 | tail -3
for dtype in float64 float32; do
  start=$(date +%s.%N)
  python3 -m cli capture manifests/cli-flags-003-phase-j.toml --native --py-device cuda \
    --py-dtype "$dtype" --c-threads 16 --bundles "$OUT/bundles" --json > "$OUT/capture-$dtype.json"
  code=$?
  echo "capture $dtype on cuda: exit $code, $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
  python3 - "$OUT/capture-$dtype.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r.get("metrics") or {}
fd = r.get("first_divergence")
print(f"  verdict {r['verdict']} status {r['status']} keys {r['keys_compared']}"
      f" pearson {m.get('pearson')} sum_ratio {m.get('sum_ratio')}"
      f" first_divergence {fd and (fd['key'], fd['rel_diff'])}")
PY
  b=$(python3 -c "import json,sys; print(json.load(open('$OUT/capture-$dtype.json'))['bundle'])")
  cp "$b/report.md" "$OUT/report-$dtype.md" 2>/dev/null
  python3 -c "
import json; m = json.load(open('$b/manifest.json'))
for c in m['commands']: print('  ', c['step'], c['exit_code'], round(c['wall_s'], 2), 's', c['peak_rss_kb'], 'kB')
print('  cuda:', m['environment']['cuda'], 'torch', m['environment']['versions']['torch'])"
done
python3 bench/minibragg_bench.py --engines c,cuda64,cuda32 --repeat 2 2>&1 | tail -12
