# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Both install exactly what uv.lock names: pip bootstraps the pinned uv into .venv, then `uv sync
# --frozen` installs from the lock (the runtime set for `run`, with the `test` extra for `test`).
PYTHON ?= python3
PORT ?= 8501
ADDRESS ?= 127.0.0.1
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

# uv installs into .venv with the Python that made it, never one it downloads
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
# and compiles what it installs: every process (an app server, a CLI run, a test worker) then imports
# from bytecode even where PYTHONDONTWRITEBYTECODE keeps Python from writing it (seconds a start)
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint chromium emulator clean screenshots bytecode

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==$(UV_VERSION)

# The test set holds the runtime set, so a `make test` serves `make run` too; a `make run` syncs
# the runtime set exactly (the test tools go) and so leaves the next `make test` to put them back.
$(RUN_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	rm -f $(TEST_STAMP)
	touch $@

$(TEST_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --extra test
	touch $@ $(RUN_STAMP)

# Debian's Chromium for the browser journeys (Playwright cannot download its own here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests"; \
		fi; \
	fi

# Flux Lab's own packages, installed editable (so uv leaves them as source), compiled before each
# run and test: where PYTHONDONTWRITEBYTECODE is set (this machine, CI) every process would compile
# their 71 files again as it starts (0.5 s of CPU; an app server healthy in 1.8 s instead of 2.6).
# A file compiled already and unchanged since is skipped.
bytecode: | $(UV)
	$(PY) -m compileall -q -j 0 flux_core flux_ui

run: $(RUN_STAMP) bytecode
	$(VENV)/bin/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

emulator: $(RUN_STAMP) bytecode
	$(VENV)/bin/flux-lab emulator

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# one pytest worker a core (pytest-xdist), each test file on one worker (its module fixtures set up
# once); the slowest tests are listed
test: $(TEST_STAMP) chromium lint bytecode
	$(PY) -m pytest -n auto --dist loadfile --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

# Retake the README's screenshots with the browser journeys (docs/*.png).
screenshots: $(TEST_STAMP) chromium bytecode
	FLUX_LAB_SCREENSHOTS=docs $(PY) -m pytest -q tests/browser
