#!/usr/bin/env bash
# Set everything up, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check careval tests bench
.venv/bin/mypy
# Two workers (CAREVAL_TEST_WORKERS to change; 0 for none), each taking whole test files so a
# file's module fixtures are built once: the suite in about half the time on 2 cores.
workers=${CAREVAL_TEST_WORKERS:-2}
if [ "$workers" = "0" ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
# The workers already use the cores: each runs careval's own fits on one thread unless
# CAREVAL_THREADS says otherwise (tests/test_parallel.py sets its own, to check two threads).
export CAREVAL_THREADS=${CAREVAL_THREADS:-1}
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
