#!/usr/bin/env bash
# Run a command with a local broker: start one if none answers, and stop it afterwards
# only if this script started it. Exports SEGSTREAM_BOOTSTRAP for the command.
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
"$@"
