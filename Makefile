# segstream — the README's two commands are `make demo` and `make test`.
# Everything else here is a step those two use, kept callable on its own.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
KAFKA_PORT  ?= 9092
export KAFKA_PORT
export SEGSTREAM_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)

.PHONY: help venv kafka kafka-stop kafka-status test unit lint typecheck demo bench clean

help:
	@echo "make demo        start a local broker and a worker, stream sample events, show outputs"
	@echo "make test        install, start the broker if needed, run every test"
	@echo "make kafka       start the local single-node KRaft broker (port KAFKA_PORT=$(KAFKA_PORT))"
	@echo "make kafka-stop  stop it"
	@echo "make bench       micro-benchmarks (validation, engine)"
	@echo "make lint        ruff + mypy"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

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

unit: $(STAMP)
	$(BIN)/pytest -m 'not kafka' -q

demo: $(STAMP)
	@bash scripts/demo.sh

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
