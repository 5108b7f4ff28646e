#!/usr/bin/env bash
# Set everything up, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check careval tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
