# make bench: set up .venv (if needed) and run the quickstart suite.
# make test:  set up/update .venv and run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch; a plain "torch" pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: bench test venv lint clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[torch,measure,lm,ray,dev]"
	touch $@

venv: $(VENV)/.installed

bench: $(VENV)/.installed
	$(VENV)/bin/harness bench suites/quickstart.toml

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check harness plugins tests

clean:
	rm -rf $(VENV) results/quickstart
