#!/usr/bin/env bash
# Prepare the wheels benchmarks/gpu_check.sh installs on a GPU machine without network:
# CPython 3.12 manylinux x86_64 wheels of what that machine lacks, plus this project's own
# wheel, into the ignored folder .whl/ (carried to the machine with the checkout).
#
#   bash benchmarks/gpu_wheels.sh          # needs the package index (pip download)
#
# The GPU machine has torch 2.11 (CUDA 13), torchvision, timm, transformers, onnxruntime,
# pandas, pluggy, rich, nvidia-ml-py, scikit-learn and pytest; it lacks torchao,
# torch-pruning, codecarbon, lm-eval, datasets and the project. The check needs only:
#   torchao 0.18.0  - the first release built against torch 2.11 (its __init__ loads its
#                     C++/CUDA extensions only on torch >= 2.11); pure-Python API otherwise
#   torch-pruning   - pure Python (deps: torch, numpy: on the machine)
# codecarbon is left out on purpose: without it the harness measures GPU energy through
# NVML alone and records the CPU/RAM parts (and so the total) absent with the reason;
# the check judges the NVML figures (docs/gpu.md). The list must match WHEELS in
# benchmarks/gpu_check.py, which the dry run checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
DEST=.whl
PACKAGES=(torchao==0.18.0 torch-pruning==1.6.1)

rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" "${PACKAGES[@]}"
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation . -w "$DEST" \
  || "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps . -w "$DEST"
rm -rf build  # setuptools' build tree
ls -l "$DEST"
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
echo "wheels in $DEST: $(ls "$DEST"/*.whl | wc -l) files, $total bytes ($(( total / 1048576 )) MiB; the limit is 50 MiB)"
[ "$total" -lt $(( 50 * 1048576 )) ] || { echo "too big: the carried tree must stay under 64 MiB" >&2; exit 1; }
