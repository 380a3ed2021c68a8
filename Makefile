# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
PORT ?= 8501
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test lint chromium emulator clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
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

run: $(RUN_STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true

emulator: $(RUN_STAMP)
	$(VENV)/bin/flux-lab emulator

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(TEST_STAMP) chromium lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

# Retake the README's screenshots with the browser journeys (docs/*.png).
screenshots: $(TEST_STAMP) chromium
	FLUX_LAB_SCREENSHOTS=docs $(PY) -m pytest -q tests/browser
