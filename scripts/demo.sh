#!/usr/bin/env bash
# `make demo`: broker (started here if none runs, and then stopped again), worker,
# a short story of events, the outputs as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
started=0
if ! bash scripts/kafka.sh status >/dev/null 2>&1; then
  bash scripts/kafka.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash scripts/kafka.sh stop; fi; }
trap cleanup EXIT
export SEGSTREAM_BOOTSTRAP="127.0.0.1:${KAFKA_PORT:-9092}"
.venv/bin/python -m streams.demo
