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

.PHONY: fuzz-atheris demo test test-fast sysdeps venv bench bench-peers bench-sysdeps bench-pcap fuzz fuzz-long corpus clean

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

# The whole suite in two passes that run side by side (Numba's cold compile is
# single-threaded and dominates, and the machine has two cores):
#   - the hostile-input tests (fuzz, corpus, malformed frames and files) with Numba's
#     bounds checks on, in their own cache; they run only there, since a bounds-checked
#     run proves strictly more than an unchecked one (same results, and no access out
#     of bounds);
#   - everything else, then the benchmark suites once each as a smoke test.
# The hostile pass's output is printed when it ends; the target fails if either fails.
HOSTILE_LOG := .test-hostile.log
test: $(STAMP) sysdeps bench-peers
	@rm -f $(HOSTILE_LOG); \
	( $(BOUNDS_ENV) $(BIN)/python -m pytest -q --durations=10 -p no:cacheprovider -m hostile $(PYTEST_ARGS) \
	    >$(HOSTILE_LOG) 2>&1; echo $$? >$(HOSTILE_LOG).rc ) & hostile=$$!; \
	$(BIN)/python -m pytest -q --durations=15 -m "not hostile" $(PYTEST_ARGS); main=$$?; \
	$(BIN)/python -m pytest -q -p no:cacheprovider bench --benchmark-disable; smoke=$$?; \
	wait $$hostile; rc=$$(cat $(HOSTILE_LOG).rc); \
	echo "==== hostile-input tests, NUMBA_BOUNDSCHECK=1 (ran alongside) ===="; cat $(HOSTILE_LOG); \
	echo "==== exit status: main $$main, hostile (bounds-checked) $$rc, bench smoke $$smoke ===="; \
	[ $$main = 0 ] && [ $$rc = 0 ] && [ $$smoke = 0 ]

# Quick loop for development: no slow or kernel tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not kernel" $(PYTEST_ARGS)

# Benchmarks side by side with the peers (bench/RESULTS.md): a short run of the
# pytest-benchmark suites (all of bench/) and of every peer, one table, one plot.
# `make bench BENCH_ARGS="--suites all --full"` for the long version.
PEERS := bench/peers
PEERS_BUILD := $(PEERS)/build
BENCH_ARGS ?= --suites all

# The C peers need a compiler and pkg-config; the DPDK peer needs libdpdk-dev (Debian).
# Installed when root; otherwise the rows they would give are skipped with a message.
bench-sysdeps:
	@if ! command -v cc >/dev/null || ! command -v pkg-config >/dev/null || ! pkg-config --exists libdpdk 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing build-essential pkg-config libdpdk-dev (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config libdpdk-dev >/dev/null \
	      || echo "apt-get failed: the DPDK peer will be skipped"; \
	  else echo "cc/pkg-config/libdpdk-dev missing and not root: the C/DPDK peer rows will be skipped"; fi; \
	fi

$(PEERS_BUILD)/cref: $(PEERS)/cref.c $(PEERS)/common.h
	@mkdir -p $(@D)
	$(CC) -O3 -march=native -Wall -o $@ $<

$(PEERS_BUILD)/dpdk_peer: $(PEERS)/dpdk_peer.c $(PEERS)/common.h
	@mkdir -p $(@D)
	$(CC) $$(pkg-config --cflags libdpdk) -O3 -march=native -Wall -Wno-deprecated-declarations -o $@ $< $$(pkg-config --libs libdpdk)

bench-peers: bench-sysdeps
	@if command -v $(CC) >/dev/null; then $(MAKE) -s $(PEERS_BUILD)/cref; else echo "no C compiler: careful-C rows skipped"; fi
	@if pkg-config --exists libdpdk 2>/dev/null; then $(MAKE) -s $(PEERS_BUILD)/dpdk_peer; \
	else echo "DPDK (libdpdk-dev) not installed: DPDK rows skipped"; rm -f $(PEERS_BUILD)/dpdk_peer; fi

bench: $(STAMP) sysdeps bench-peers
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/pip install -q -e '.[test,plot]'
	$(BIN)/python -m offload bench --out bench/out --markdown bench/RESULTS.md $(BENCH_ARGS)

# GRO round trips and hostile trains with many more hypothesis examples (minutes).
.PHONY: gro-props-long
gro-props-long: $(STAMP)
	OFFLOAD_GRO_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/test_gro_props.py
	$(BOUNDS_ENV) OFFLOAD_GRO_EXAMPLES=2000 $(BIN)/python -m pytest -q -m hostile tests/test_gro_props.py

clean:
	rm -rf $(VENV) .numba-cache* .test-hostile.log* .hypothesis .benchmarks bench/out $(PEERS_BUILD)
	find . -name __pycache__ -prune -exec rm -rf {} +

# pcap read+parse of a >= 1 GB file next to dpkt and scapy, and `offload stats` cold start.
bench-pcap: $(STAMP)
	$(BIN)/python -m pytest bench/test_pcap.py -p no:cacheprovider -s --benchmark-columns=min,median,max $(PYTEST_ARGS)

# Hostile input (issue 8). `make fuzz`: every fuzz target with a bigger budget, bounds
# checks on (a few minutes). `make fuzz-long`: the million-case campaign per target.
FUZZ_EXAMPLES ?= 1000
FUZZ_CASES ?= 200000
FUZZ_LONG_CASES ?= 1000000
fuzz: $(STAMP)
	OFFLOAD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) OFFLOAD_FUZZ_CASES=$(FUZZ_CASES) $(BOUNDS_ENV) \
	  $(BIN)/python -m pytest -q -m hostile -k fuzz -p no:cacheprovider $(PYTEST_ARGS)

fuzz-long: $(STAMP)
	$(BOUNDS_ENV) $(BIN)/python fuzz/campaign.py --cases $(FUZZ_LONG_CASES)

# Coverage-guided runs with atheris (the Python layers are instrumented; Numba kernels are opaque).
ATHERIS_RUNS ?= 1000000
fuzz-atheris: $(STAMP)
	$(BIN)/pip install -q -e '.[fuzz]'
	$(BOUNDS_ENV) $(BIN)/python fuzz/atheris_pcap.py -atheris_runs=$(ATHERIS_RUNS) -max_len=65536
	$(BOUNDS_ENV) $(BIN)/python fuzz/atheris_parse.py -atheris_runs=$(ATHERIS_RUNS)

# Checksum engine (issue 3): the hypothesis properties (scapy and tshark oracles) with a
# long budget, then the checksum benchmarks next to np.copyto.
CSUM_EXAMPLES ?= 1000
CSUM_TSHARK_EXAMPLES ?= 100
.PHONY: csum-long bench-csum
csum-long: $(STAMP)
	CSUM_EXAMPLES=$(CSUM_EXAMPLES) CSUM_TSHARK_EXAMPLES=$(CSUM_TSHARK_EXAMPLES) \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_csum.py tests/test_checksum_cli.py $(PYTEST_ARGS)

bench-csum: $(STAMP)
	$(BIN)/python -m pytest bench/test_csum.py -p no:cacheprovider --benchmark-columns=min,median,ops \
	  --benchmark-sort=name $(PYTEST_ARGS)
