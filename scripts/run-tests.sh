#!/usr/bin/env bash
# `make test`: lint and type check, then every test against a real local broker.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check segments streams schemas tests bench
.venv/bin/mypy
# the broker tests in order on one process, the unit tests spread over both (conftest.py)
exec bash scripts/with-kafka.sh .venv/bin/pytest -q -n "${SEGSTREAM_TEST_PROCESSES:-2}" \
    --dist loadgroup "$@"
