# Two commands do all the set-up (see README):
#   make demo   create the environment, install, segment the bundled example capture
#   make test   the whole test suite (installs tshark/ethtool/iproute2 from Debian where missing)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Bounds-checked runs keep their own Numba cache: the on-disk cache ignores NUMBA_BOUNDSCHECK.
BOUNDS_ENV := NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(CURDIR)/.numba-cache-boundscheck
PYTEST_ARGS ?=

.PHONY: demo test test-fast sysdeps venv bench fuzz fuzz-long corpus clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/offload demo

# Debian packages the tests use as oracles (tshark, ethtool, ip). Needs root; skipped
# when already present.
sysdeps:
	@if ! command -v tshark >/dev/null || ! command -v ethtool >/dev/null || ! command -v ip >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark ethtool iproute2 >/dev/null; \
	  else echo "tshark/ethtool/iproute2 missing and not root: tests that need them will say so and skip"; fi; \
	fi

# The whole suite, then the hostile-input tests (fuzz, corpus) again with Numba's
# bounds checks on, in their own cache.
test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(BOUNDS_ENV) $(BIN)/python -m pytest -q -m hostile $(PYTEST_ARGS)

# Quick loop for development: no slow or kernel tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not kernel" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .numba-cache* .hypothesis .benchmarks
	find . -name __pycache__ -prune -exec rm -rf {} +
