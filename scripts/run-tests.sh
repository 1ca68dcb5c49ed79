#!/usr/bin/env bash
# `make test`: lint, then every test, against a real local broker. Starts the broker
# if none answers and stops it afterwards only if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

"$bin/ruff" check segments streams schemas tests bench
"$bin/mypy"

started=0
if ! bash scripts/kafka.sh status >/dev/null 2>&1; then
  bash scripts/kafka.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash scripts/kafka.sh stop; fi; }
trap cleanup EXIT

export SEGSTREAM_BOOTSTRAP="127.0.0.1:${KAFKA_PORT:-9092}"
"$bin/pytest" -q "$@"
