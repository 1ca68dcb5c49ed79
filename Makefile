# segstream — the README's two commands are `make demo` and `make test`.
# Everything else here is a step those two use, kept callable on its own.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
# Every install (this virtualenv, CI, the demo, the Docker image) is exactly uv.lock.
# uv itself comes from PyPI at this version, into a folder of its own.
UV_VERSION  := 0.13.9
UV_HOME     := .tools/uv-$(UV_VERSION)
UV          := $(UV_HOME)/bin/uv
EXTRAS      := --extra test --extra bench
# never fetch an interpreter: use $(PYTHON); compile bytecode at install time, since
# a machine with PYTHONDONTWRITEBYTECODE set would otherwise recompile every module
# (scipy, river, faust) in every process it starts, ~17 s each
export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
KAFKA_PORT  ?= 9092
export KAFKA_PORT
export SEGSTREAM_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)

.PHONY: help venv lock lock-upgrade test-latest chaos kafka kafka-stop kafka-status test unit lint typecheck demo \
	bench bench-throughput bench-scale bench-recovery clean

help:
	@echo "make demo        start a local broker and a worker, stream sample events, show outputs"
	@echo "make test        install, start the broker if needed, run every test"
	@echo "make kafka       start the local single-node KRaft broker (port KAFKA_PORT=$(KAFKA_PORT))"
	@echo "make kafka-stop  stop it"
	@echo "make bench       micro-benchmarks (validation, engine)"
	@echo "make bench-throughput  drain throughput vs aiokafka and Faust (needs make kafka)"
	@echo "make bench-scale drain throughput of 1, 2, 3 workers in one group (needs make kafka)"
	@echo "make bench-recovery restart (warm, kill -9, cold) and takeover times, memory, disk (needs make kafka)"
	@echo "make chaos       the failover tests, CHAOS_RUNS times in a row (default 5)"
	@echo "make lint        ruff + mypy"
	@echo "make lock        update uv.lock after editing pyproject.toml (keeps what still fits)"
	@echo "make lock-upgrade re-resolve uv.lock to the newest versions pyproject.toml allows"
	@echo "make test-latest the unit tier on the newest allowed versions (.venv-latest)"

venv: $(STAMP)

$(UV):
	rm -rf $(UV_HOME)
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check \
	    uv==$(UV_VERSION)

# --locked: stop if uv.lock no longer matches pyproject.toml (run `make lock`)
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked $(EXTRAS) --python $(PYTHON) --quiet
	touch $(STAMP)

# after editing pyproject.toml: keeps every locked version that still fits
lock: | $(UV)
	$(UV) lock --python $(PYTHON)

# the newest versions pyproject.toml allows (then `make test`, and commit uv.lock)
lock-upgrade: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

# Not part of `make test`: what a user installing today with `pip install segstream`
# would get. Lists what differs from the lock, then runs the tests that need no broker.
test-latest: | $(UV)
	rm -rf .venv-latest
	$(UV) venv --quiet --python $(PYTHON) .venv-latest
	$(UV) pip install --quiet --python .venv-latest/bin/python --upgrade --refresh \
	    -e '.[test,bench]'
	@.venv-latest/bin/python scripts/lock_drift.py uv.lock
	.venv-latest/bin/pytest -m 'not kafka' -q -p no:cacheprovider -n 2

kafka:
	@bash scripts/kafka.sh start

kafka-stop:
	@bash scripts/kafka.sh stop

kafka-status:
	@bash scripts/kafka.sh status

lint: $(STAMP)
	$(BIN)/ruff check segments streams schemas tests bench
	$(BIN)/mypy

# Starts the broker when none runs, and stops it afterwards only if it started it.
test: $(STAMP)
	@bash scripts/run-tests.sh

# the failover tests (marked chaos; in `make test` too), CHAOS_RUNS times in a row:
# a takeover that goes wrong once in a few runs shows up here
CHAOS_RUNS ?= 5
chaos: $(STAMP)
	@bash scripts/with-kafka.sh bash -c 'for run in $$(seq $(CHAOS_RUNS)); do \
	  echo "chaos run $$run of $(CHAOS_RUNS)"; \
	  $(BIN)/pytest -q -m chaos -p no:cacheprovider || exit 1; done'

unit: $(STAMP)
	$(BIN)/pytest -m 'not kafka' -q

demo: $(STAMP)
	@bash scripts/demo.sh

bench: $(STAMP)
	$(BIN)/python bench/run.py

# drain throughput side by side (bare aiokafka, Faust, the worker) on the local broker
bench-throughput: $(STAMP)
	$(BIN)/python bench/throughput.py --offline

# drain throughput of 1, 2, 3 workers in one group (needs make kafka)
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

# restart and takeover times, memory and disk per customer (needs make kafka; minutes)
RECOVERY_CUSTOMERS ?= 100000
bench-recovery: $(STAMP)
	$(BIN)/python bench/recovery.py restart --customers $(RECOVERY_CUSTOMERS)
	$(BIN)/python bench/recovery.py takeover --customers $(RECOVERY_CUSTOMERS)

clean:
	rm -rf $(VENV) .venv-latest .tools build dist *.egg-info .pytest_cache .mypy_cache \
	    .ruff_cache
