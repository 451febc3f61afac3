# vidmill: two commands on a fresh machine. `make run` serves, `make test` tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench unit doctor clean players

# Browser player tests (tests/players): Debian's chromium driven by pip's playwright (never `playwright
# install`), hls.js / dash.js / Shaka Player pinned in tests/players/package-lock.json. Installed only when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PLAYERS_STAMP := tests/players/node_modules/.package-lock.json

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# tus-js-client for tests/integration/test_tus.py: installed from the committed lock file, only when missing
TUS_JS := tests/tus/node_modules/.package-lock.json
$(TUS_JS): tests/tus/package-lock.json
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q nodejs npm)
	cd tests/tus && npm ci --no-audit --no-fund --loglevel=error
test: $(TUS_JS)  # tests/integration/test_tus_browser.py also needs Debian's chromium: the players target

run: $(STAMP)
	$(BIN)/vidmill serve

test: $(STAMP) players
	$(BIN)/python -m pytest tests

players: $(PLAYERS_STAMP)
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

$(PLAYERS_STAMP): tests/players/package-lock.json
	command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }
	cd tests/players && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not integration"

# Azurite (Azure Blob emulator) for the storage tests, from the committed lock file
AZURITE := tests/storage/azurite/node_modules/.package-lock.json
$(AZURITE): tests/storage/azurite/package-lock.json
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q nodejs npm)
	cd tests/storage/azurite && npm ci --no-audit --no-fund --loglevel=error
test: $(AZURITE)

bench: $(STAMP)
	$(BIN)/python bench/run.py

doctor: $(STAMP)
	$(BIN)/vidmill doctor

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info tests/players/node_modules
