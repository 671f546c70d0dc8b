# make bench: set up .venv (if needed) with what the quickstart needs, run it.
# make test:  set up/update .venv with everything (LM, Ray, dev tools), run all tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# The CPU build of torch; a plain "torch" pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: bench bench-lm test test-fast lint benchmarks clean

$(VENV)/.bench-deps: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[torch,measure]"
	touch $@

$(VENV)/.test-deps: $(VENV)/.bench-deps
	$(PIP) install --quiet -e ".[torch,measure,lm,data,ray,report,mlflow,dev]"
	@# the report's browser test renders in headless Chromium (Debian's package); best effort:
	@# without it (no root, no apt) that one test skips and says how to get it
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) || \
		echo "note: chromium is not installed (apt-get install chromium): the report's browser test will skip"
	touch $@

bench: $(VENV)/.bench-deps
	$(VENV)/bin/harness bench suites/quickstart.toml

bench-lm: $(VENV)/.test-deps
	$(VENV)/bin/harness bench suites/lm-quickstart.toml

test: $(VENV)/.test-deps
	$(PY) -m pytest -q

# Everything but the end-to-end runs of `harness bench` (marked e2e): the inner loop.
test-fast: $(VENV)/.test-deps
	$(PY) -m pytest -q -m "not e2e"

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check harness plugins tests examples benchmarks

# Speed and fidelity goals live here, not in timed unit tests: run on a quiet machine.
benchmarks: $(VENV)/.test-deps
	$(PY) benchmarks/timer_overhead.py
	$(PY) benchmarks/timing_fidelity.py
	$(PY) benchmarks/structured_pruning.py

clean:
	rm -rf $(VENV) results/quickstart results/lm-quickstart

# The GPU check's wheels (docs/gpu.md): .whl/ for a GPU machine without network.
.PHONY: gpu-wheels
gpu-wheels:
	bash benchmarks/gpu_wheels.sh
