# vidmill: two commands on a fresh machine. `make run` serves, `make test` tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench unit doctor clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# tus-js-client for tests/integration/test_tus.py: installed from the committed lock file, only when missing
TUS_JS := tests/tus/node_modules/.package-lock.json
$(TUS_JS): tests/tus/package-lock.json
	cd tests/tus && npm ci --no-audit --no-fund --loglevel=error
test: $(TUS_JS)
# Debian's Chromium for tests/integration/test_tus_browser.py (pip's playwright drives it, never downloads one)
.PHONY: tus-browser
tus-browser:
	test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
test: tus-browser

run: $(STAMP)
	$(BIN)/vidmill serve

test: $(STAMP)
	$(BIN)/python -m pytest tests

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not integration"

bench: $(STAMP)
	$(BIN)/python bench/run.py

doctor: $(STAMP)
	$(BIN)/vidmill doctor

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
