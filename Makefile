# make bench: set up .venv (if needed) with what the quickstart needs, run it.
# make test:  set up/update .venv with everything (LM, Ray, dev tools) and .venv-vision
#             (torchvision, timm), run all tests: the vision ones (marked vision) in .venv-vision.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
TORCH  ?= torch==2.13.0
# torchvision must be built for the very torch beside it, and the pair this project's offline
# mirror holds is not .venv's torch: the vision tests get their own environment.
VISION_VENV  ?= .venv-vision
VISION_PY    := $(VISION_VENV)/bin/python
VISION_PIP   := $(VISION_PY) -m pip --disable-pip-version-check
VISION_TORCH ?= torch==2.14.1 torchvision==0.29.1
# pytest processes (pytest-xdist): most tests wait on worker processes, two keep both cores busy
TEST_JOBS ?= 2

# Without an NVIDIA GPU (no nvidia-smi), torch and torchvision come from PyTorch's CPU index,
# the "+cpu" builds (~200 MB), when it answers within 5 s: PyPI's Linux torch is the CUDA build
# (several GB). Where it does not (a machine whose only index is an offline mirror, like this
# project's, whose torch 2.13.0 is the CPU build), and with a GPU, the pins come from pip's
# configured index. TORCH_INDEX=URL picks an index; TORCH_INDEX= the configured one. Asked
# only by a recipe that installs torch (make prints the pip command it chose).
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(shell $(PYTHON) -c "import shutil, sys, urllib.request as r; \
	shutil.which('nvidia-smi') and sys.exit(); r.urlopen(sys.argv[1] + '/torch/', timeout=5); \
	print(sys.argv[1])" $(TORCH_CPU_INDEX) 2>/dev/null)
TORCH_FROM = $(addprefix --index-url ,$(TORCH_INDEX))

# The tests' builtin models (trained in seconds on first use, keyed by a hash of what decides
# their weights) and data caches live here across `make test` runs, as .venv does: a re-run
# does not train them again. HARNESS_TEST_CACHE= gives each run a fresh cache of its own.
export HARNESS_TEST_CACHE ?= $(CURDIR)/.cache/test
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: bench bench-lm test test-fast test-vision lint benchmarks clean

$(VENV)/.bench-deps: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet $(TORCH_FROM) "$(TORCH)"
	$(PIP) install --quiet -e ".[torch,measure]"
	touch $@

$(VENV)/.test-deps: $(VENV)/.bench-deps $(wildcard contrib/*/pyproject.toml examples/*/pyproject.toml)
	$(PIP) install --quiet -e ".[torch,measure,lm,data,ray,report,mlflow,dev,runtimes]"
	@# the toolkit adapters under contrib/ and the example plugin: distributions of their own,
	@# installed as a user would
	$(PIP) install --quiet $(foreach d,$(wildcard contrib/*/pyproject.toml examples/*/pyproject.toml),-e ./$(dir $(d)))
	@# optimum-quanto compiles its CPU kernels on first use (about a minute, once per install):
	@# here, with the install, rather than inside the first test that uses them
	@$(PY) -c "import harness_quanto.kernels" 2>&1 | grep -v "^Failed to load\|^W[0-9]" || true
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

# The vision tests need the core, the torch and data extras and pytest beside the pair; the runtimes
# extra too, for benchmarks/runtimes_zoo.py --part vision (ResNet-18 in ONNX Runtime and OpenVINO).
$(VISION_VENV)/.deps: pyproject.toml Makefile
	test -x $(VISION_PY) || $(PYTHON) -m venv $(VISION_VENV)
	@echo '*' > $(VISION_VENV)/.gitignore  # git leaves it alone (.gitignore names .venv/ only)
	$(VISION_PIP) install --quiet $(TORCH_FROM) $(VISION_TORCH)
	$(VISION_PIP) install --quiet -e ".[torch,data,vision,runtimes]" "pytest>=8"
	touch $@

# The tests marked vision, run alone: in .venv-vision the LM and Ray test files would only skip.
VISION_TESTS := tests/test_vision_sources.py

# The vision tests run beside the rest (the rest leave a core idle while their runs wait on
# timeouts and subprocesses); their output is printed when both are done. One torch thread
# per test process: two or three processes on two cores, each spinning two OpenMP threads over
# tiny matrices, run several times slower.
test: $(VENV)/.test-deps $(VISION_VENV)/.deps
	@OMP_NUM_THREADS=1 $(VISION_PY) -m pytest -q -p no:cacheprovider $(VISION_TESTS) \
		> $(VISION_VENV)/last-test.log 2>&1 & vision=$$!; \
	echo "$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m 'not vision'  (and, beside it, $(VISION_TESTS) in $(VISION_VENV))"; \
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not vision"; rest=$$?; \
	wait $$vision; vision=$$?; echo "-- $(VISION_TESTS) in $(VISION_VENV):"; cat $(VISION_VENV)/last-test.log; \
	test $$rest -eq 0 -a $$vision -eq 0

test-vision: $(VISION_VENV)/.deps
	$(VISION_PY) -m pytest -q $(VISION_TESTS)

# Everything of .venv but the end-to-end runs of `harness bench` (marked e2e): the inner loop.
test-fast: $(VENV)/.test-deps
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not e2e and not vision"

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check harness plugins tests examples benchmarks contrib

# Speed and fidelity goals live here, not in timed unit tests: run on a quiet machine.
benchmarks: $(VENV)/.test-deps
	$(PY) benchmarks/timer_overhead.py
	$(PY) benchmarks/timing_fidelity.py
	$(PY) benchmarks/structured_pruning.py

clean:
	rm -rf $(VENV) $(VISION_VENV) .cache results/quickstart results/lm-quickstart

# The GPU check's wheels (docs/gpu.md): .whl/ for a GPU machine without network.
.PHONY: gpu-wheels
gpu-wheels:
	bash benchmarks/gpu_wheels.sh
