# The verbs: run, test, bench, lint, fmt. Each sets up what it needs.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.exo-built
# tests/test_uvloop.py runs exo on uvloop; the benches report both loops.
UVLOOP := uvloop>=0.19
# The example (exo example, make run): FastAPI + pydantic 2 + uvicorn + prometheus-client,
# the `example` extra in pyproject.toml; httpx for its tests.
EXAMPLE := "fastapi>=0.110" "pydantic>=2.5" "uvicorn>=0.29" "prometheus-client>=0.20" "httpx>=0.27"

# A wheel most Linux users can install (glibc >= 2.17): zig as the linker.
wheel: $(PY)
	$(PY) -m pip install -q "maturin>=1.7,<2" ziglang
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/maturin build --release --strip --zig --compatibility manylinux2014 -o dist

.PHONY: wheel run test test-rust test-python test-scaleout-big bench lint fmt develop clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Rebuild the extension when Rust or packaging sources change.
$(STAMP): $(PY) pyproject.toml Cargo.toml $(shell find rust -name '*.rs' -o -name Cargo.toml) 
	$(PY) -m pip install -q "maturin>=1.7,<2" "pytest>=8" "pytest-asyncio>=0.24" "pytest-benchmark>=4" "pytest-timeout>=2.3" "websockets>=13" "redis>=5.0.1,<9" "$(UVLOOP)" $(EXAMPLE)
	$(VENV)/bin/maturin develop --release -q
	touch $(STAMP)

develop: $(STAMP)

# The example: HTTP order entry + paper fills on the bundled replay; Ctrl-C stops it.
run: $(STAMP)
	$(VENV)/bin/exo example

test: $(STAMP) test-rust test-python

test-rust:
	cargo test -p exo-core

test-python: $(STAMP)
	$(PY) -m pytest

# The kill -9 failover run with 1,000 orders through HTTP (the suite runs 300),
# against a redis-server and a 3-master Redis Cluster.
test-scaleout-big: $(STAMP)
	EXO_SCALEOUT_ORDERS=1000 $(PY) -m pytest tests/test_scaleout_procs.py -k kill_9 -o timeout=900 -s

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
	EXO_BENCH_JSON=$(BENCH_OUT)/figures.json $(PY) -m pytest benches -o python_files='bench_*.py' -p no:cacheprovider -q
	$(PY) benches/report.py

lint: $(STAMP)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PY) -m pip install -q ruff mypy
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/mypy

fmt:
	cargo fmt
	$(VENV)/bin/ruff format python tests benches examples

clean:
	rm -rf $(VENV) target
