#!/usr/bin/env bash
# Set everything up, then run the main job: the evaluation of the embedded synthetic default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/careval demo "$@"
