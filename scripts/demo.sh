#!/usr/bin/env bash
# `make demo`: a worker on the local broker, a short story of events, outputs as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/with-kafka.sh .venv/bin/python -m streams.client.demo
