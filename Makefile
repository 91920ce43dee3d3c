# The verbs: run, test, lint, fmt, docs, bench, fuzz-http, soak, wheel (`make` lists them).
# Each sets up what it needs.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.exo-built
# tests/test_uvloop.py runs exo on uvloop; the benches report both loops.
UVLOOP := uvloop>=0.19
# The example (exo example, make run): FastAPI + pydantic 2 + uvicorn + prometheus-client,
# fastapi-offline (the docs' assets, offline): the `example` extra in pyproject.toml;
# httpx and schemathesis for its tests.
EXAMPLE := "fastapi>=0.110" "pydantic>=2.5" "uvicorn>=0.29" "prometheus-client>=0.20" "fastapi-offline>=1.7" "httpx>=0.27" "schemathesis>=4"
# Venues (exo.venues.Binance/BitMEX/FIX): the `venues` extra; quickfix-py has wheels for 3.11/3.12 only.
VENUES := "cryptography>=42" "simplefix>=1.0.17" "quickfix-py>=0.0.3; python_version >= '3.11' and python_version < '3.13'"

# The documentation site (make docs): mkdocs-material, API pages by mkdocstrings from the docstrings.
# ruff: mkdocstrings formats the signatures with it.
DOCS := "mkdocs-material>=9.5,<10" "mkdocstrings[python]>=0.26" ruff

# `make` alone only prints the verbs: nothing is built or installed.
help:
	@echo "make run        the example: HTTP order entry, paper fills on the bundled replay (Ctrl-C stops)"
	@echo "make develop    .venv with exo built in place (make run/test do it for you)"
	@echo "make test       cargo test + pytest (what CI runs)"
	@echo "make lint       cargo fmt --check, clippy, ruff (check, format), mypy, stubtest"
	@echo "make fmt        cargo fmt, ruff format"
	@echo "make docs       the documentation site (mkdocs) in site/"
	@echo "make bench      the benchmarks and benches/REPORT.md (minutes; a quiet machine)"
	@echo "make fuzz-http  schemathesis on the example's OpenAPI schema, FUZZ_EXAMPLES cases per operation"
	@echo "make fuzz-feeds proptest (PROPTEST_CASES) then libFuzzer (FUZZ_SECONDS) on the feed parsers"
	@echo "make soak       the example at --speed max with orders and cancels, SOAK_SECONDS (600)"
	@echo "make wheel      a release wheel for manylinux2014 (zig as the linker)"
	@echo "make clean      remove .venv, target/ and site/"

# A wheel most Linux users can install (glibc >= 2.17): zig as the linker.
wheel: $(PY)
	$(PY) -m pip install -q "maturin>=1.7,<2" ziglang
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/maturin build --release --strip --zig --compatibility manylinux2014 -o dist

.PHONY: help wheel run test test-rust test-python test-scaleout-big docs bench fuzz-http soak fuzz-feeds lint fmt develop clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Rebuild the extension when Rust or packaging sources change. PIP_QUIET:
# maturin's pip would otherwise list every extra it skips ("Ignoring ...").
$(STAMP): $(PY) pyproject.toml Cargo.toml $(shell find rust -name '*.rs' -o -name Cargo.toml) 
	$(PY) -m pip install -q "maturin>=1.7,<2" "pytest>=8" "pytest-asyncio>=0.24" "pytest-benchmark>=4" "pytest-timeout>=2.3" "websockets>=13" "redis>=5.0.1,<9" "limits>=4.0,<6" "$(UVLOOP)" $(EXAMPLE) $(VENUES)
	PIP_QUIET=1 $(VENV)/bin/maturin develop --release -q
	touch $(STAMP)

develop: $(STAMP)

# The example: HTTP order entry + paper fills on the bundled replay; Ctrl-C stops it.
run: $(STAMP)
	$(VENV)/bin/exo example

test: $(STAMP) lint test-rust test-python docs

test-rust:
	cargo test -p exo-core

# Then every bench once, at toy sizes and with timing off, so none can rot (~10 s).
test-python: $(STAMP)
	$(PY) -m pytest
	EXO_BENCH_SMOKE=1 $(PY) -m pytest benches -o python_files='bench_*.py' -p no:cacheprovider -q --benchmark-disable

# The site, into site/ (open site/index.html). Strict: a warning (a broken
# link or reference, a missing page) fails it. Reads the sources and
# python/exo/_core.pyi, not the built module. About 10 s.
docs: $(PY)
	$(PY) -m pip install -q $(DOCS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Fuzzing the feed parsers, bigger than the CI-size run in `cargo test`:
# 1. the proptest suite (rust/core/tests/fuzz_feeds.rs) with PROPTEST_CASES
#    cases (default 100000): mutated and random frames for each venue, and good
#    and bad frames interleaved through the replay feed;
# 2. coverage-guided libFuzzer (rust/core/fuzz, target `feeds`) for
#    FUZZ_SECONDS, which needs the nightly toolchain and cargo-fuzz
#    (`rustup toolchain install nightly; cargo install cargo-fuzz`); without
#    them only step 1 runs, and it says so. Crashes land in rust/core/fuzz/artifacts.
PROPTEST_CASES ?= 100000
FUZZ_SECONDS   ?= 120

fuzz-feeds:
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test -p exo-core --release --test fuzz_feeds -- --nocapture
	@if cargo +nightly fuzz --version >/dev/null 2>&1; then \
		cd rust/core/fuzz && cargo +nightly fuzz run feeds corpus/feeds -- \
			-dict=feeds.dict -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1; \
	else \
		echo "fuzz-feeds: nightly or cargo-fuzz missing; ran the proptest suite only" \
		     "(rustup toolchain install nightly; cargo install cargo-fuzz)"; \
	fi

# The kill -9 failover run with 3,000 orders through HTTP (the suite runs
# 1,000), against a redis-server and a 3-master Redis Cluster.
test-scaleout-big: $(STAMP)
	EXO_SCALEOUT_ORDERS=3000 $(PY) -m pytest tests/test_scaleout_procs.py -k kill_9 -o timeout=900 -s

# cargo bench's output (divan, then summary tables) is kept for the report;
# pytest's figures go to target/bench/figures.json (benches/benchkit.py);
# benches/report.py writes benches/REPORT.md and the plots in benches/report/.
BENCH_OUT := target/bench

bench: $(STAMP)
	$(PY) -m pip install -q "matplotlib>=3.7"
	mkdir -p $(BENCH_OUT)
	rm -f $(BENCH_OUT)/figures.json $(BENCH_OUT)/cargo-bench.txt
	$(PY) benches/report.py --start
	set -o pipefail; cargo bench -p exo-core 2>&1 | tee $(BENCH_OUT)/cargo-bench.txt
	EXO_BENCH_JSON=$(BENCH_OUT)/figures.json $(PY) -m pytest benches -o python_files='bench_*.py' -p no:cacheprovider -q --timeout=0
	$(PY) benches/report.py

lint: $(STAMP)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PY) -m pip install -q "ruff==0.17.6" "mypy==2.4.1"
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest exo._core --allowlist .ci/stubtest-allowlist.txt

fmt:
	cargo fmt
	$(VENV)/bin/ruff format python tests benches examples

# schemathesis on the example's OpenAPI schema (tests/test_example_schema.py),
# FUZZ_EXAMPLES cases per operation and mode, random seeds (the test suite runs
# 50, derandomized). Prints how many cases were sent.
FUZZ_EXAMPLES ?= 1000
fuzz-http: $(STAMP)
	EXO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) EXO_FUZZ_RANDOM=1 $(PY) -m pytest tests/test_example_schema.py -p no:cacheprovider -q -s

# The example at replay --speed max with a steady flow of orders and cancels
# (tests/soak.py): RSS flat within 5 % after the warm-up, no growth in fds,
# threads or tasks, every order accounted for. The samples go to
# target/soak/rss.csv. The test suite runs 60 s of it.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(PY) tests/soak.py --seconds $(SOAK_SECONDS) --csv target/soak/rss.csv

clean:
	rm -rf $(VENV) target site
