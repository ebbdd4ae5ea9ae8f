# Two entry points for a fresh machine: `make run` starts the app, `make test` runs every test.
# Each does its own set-up (virtual environment, packages; `test` also Debian's chromium).
PYTHON ?= python3
VENV := .venv
GATEWAY_VENV := .venv-gateway
PY := $(VENV)/bin/python
PORT ?= 8501
# Every venv gets this pip before anything else: the pip a Python bundles varies by machine (3.11.7 ships 23.2.1,
# which refuses the hash-pinned gateway file's unpinned extras), so set-up must not depend on it.
PIP_VERSION := 26.3

.PHONY: run test lint bench demo-server clean chromium gateway

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The LiteLLM proxy for the gateway tests, in its own venv: its pins of openai/httpx/pydantic stay out of .venv.
$(GATEWAY_VENV)/.installed: requirements-gateway.txt
	$(PYTHON) -m venv $(GATEWAY_VENV)
	$(GATEWAY_VENV)/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	$(GATEWAY_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements-gateway.txt
	touch $@

gateway: $(GATEWAY_VENV)/.installed

run: $(VENV)/.runtime
	$(PY) -m streamlit run app.py --server.port=$(PORT) --browser.gatherUsageStats=false

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi; }

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(VENV)/.dev $(GATEWAY_VENV)/.installed chromium lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) -m bench.run_all

demo-server: $(VENV)/.runtime
	$(PY) -m lib.sim --port 8765

clean:
	rm -rf $(VENV) $(GATEWAY_VENV) .pytest_cache .ruff_cache
