# MAGNET Studio. The two commands a new user needs:
#   make app    set up (first time) and open the dashboard on the shipped demo checkpoints
#   make test   set up (first time) and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: app test test-fast setup browser demo-checkpoints bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Debian's chromium for the real-browser test (never `playwright install`: no downloads here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

app: setup
	$(PY) -m streamlit run app/main.py --server.port $(PORT)

test: setup browser
	$(PY) -m pytest

# The fast inner loop: everything but the slow and browser tests.
test-fast: setup
	$(PY) -m pytest -m "not slow and not browser"

# Rebuild the shipped demo checkpoints (checkpoints/demo) from the synthetic catalog.
demo-checkpoints: setup
	$(VENV)/bin/magnet ablate --data synthetic:demo --out checkpoints/demo --device auto

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf .pytest_cache tests/artifacts .magnet_cache
