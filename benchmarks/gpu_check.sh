#!/usr/bin/env bash
# The GPU check in one command (docs/gpu.md): on a GPU machine without network, with the
# wheels of benchmarks/gpu_wheels.sh carried in .whl/ and $OUT an empty folder:
#
#   bash benchmarks/gpu_check.sh            # at most ~8 minutes; summary.md, summary.json,
#                                           # results.tar.gz and gpu_check.log in $OUT
#   bash benchmarks/gpu_check.sh --dry-run  # here, no GPU: wheels, suites, summary (seconds)
#
# Options after the first are passed to benchmarks/gpu_check.py (--skip-wheels, --work DIR,
# --budget-s N). GPU_CHECK_BUDGET_S (default 470) bounds the whole command, install
# included; each step has its own limit inside it, so a hang leaves a summary.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1

if [ "$DRY" = 1 ]; then
  PY=${PYTHON:-}
  if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
  fi
  OUT_DIR=${OUT:-$(mktemp -d -t gpu-check-out.XXXXXX)}
  exec "$PY" benchmarks/gpu_check.py --out "$OUT_DIR" --python "$PY" "$@"
fi

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470}
: "${OUT:?set OUT to the folder the summary goes to}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
SITE=${GPU_CHECK_SITE:-/tmp/site}
PY=${PYTHON:-python3}

echo "[gpu-check] installing the carried wheels into $SITE" | tee -a "$LOG"
INSTALL_LOG=$(mktemp)
timeout 120 "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --target "$SITE" .whl/*.whl \
  >"$INSTALL_LOG" 2>&1
INSTALL_RC=$?
# The checkout's own code wins over the project wheel's (built earlier, maybe before the
# last edit): the wheel brings the entry points, the checkout the current modules.
if [ "$INSTALL_RC" = 0 ] && [ -d "$SITE/harness" ] && [ -d "$SITE/harness_plugins" ]; then
  rm -rf "$SITE/harness" "$SITE/harness_plugins"
  cp -r harness "$SITE/harness" && cp -r plugins "$SITE/harness_plugins"
  find "$SITE/harness" "$SITE/harness_plugins" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
  echo "installed; harness and harness_plugins replaced by the checkout's" >>"$INSTALL_LOG"
fi
cat "$INSTALL_LOG" >>"$LOG"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HARNESS_CACHE=${HARNESS_CACHE:-/tmp/gpu-check-cache}

DEADLINE=$(( START + BUDGET - 10 ))
LEFT=$(( DEADLINE - $(date +%s) ))
# The driver stops its own steps by DEADLINE; timeout is the backstop (SIGTERM: the driver
# writes its summary and tars the results on the way out).
timeout -k 15 "$LEFT" "$PY" benchmarks/gpu_check.py --out "$OUT" --python "$PY" --deadline "$DEADLINE" \
  --install-rc "$INSTALL_RC" --install-log "$INSTALL_LOG" "$@" 2>&1 | tee -a "$LOG"
RC=${PIPESTATUS[0]}
if [ ! -s "$OUT/summary.md" ]; then
  { echo "# GPU check: FAIL (the driver wrote no summary, exit $RC)"; echo; tail -50 "$LOG"; } >"$OUT/summary.md"
fi
echo "[gpu-check] exit $RC after $(( $(date +%s) - START ))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$LOG"
exit "$RC"
