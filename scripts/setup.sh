#!/usr/bin/env bash
# Create .venv at the repository root and install careval with the pinned dependencies.
# Idempotent: a second run only checks that the lock file's packages are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.careval-lock.sha256
want=$(sha256sum requirements.lock requirements-nodeps.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.lock
  # lifelines declares pandas<3 yet runs on the lock's pandas: pinned there, installed alone.
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.lock
  echo "$want" > "$stamp"
fi
log=$(mktemp)
if ! .venv/bin/python -m pip install --quiet --no-deps -e . >"$log" 2>&1; then
  cat "$log"; rm -f "$log"; exit 1
fi
rm -f "$log"
# Headless Chromium for the report test (tests/test_report_run.py). Debian's package, installed
# only when missing and only where apt-get can run as root; setup never fails because of it (the
# test then skips, saying no Chromium binary was found).
# The names are those tests/test_report_run.py looks for (BROWSERS), so any of them will do.
found_browser=""
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  command -v "$b" >/dev/null 2>&1 && found_browser="$b"
done
if [ -z "$found_browser" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing chromium (apt-get) for the report test" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          chromium; } >/tmp/careval-apt-chromium.log 2>&1; then
      echo "setup: could not install chromium (see /tmp/careval-apt-chromium.log);" \
        "the browser test will be skipped" >&2
    fi
  else
    echo "setup: chromium not found and apt-get unavailable; the browser test will be skipped" >&2
  fi
fi
# A throwaway PostgreSQL server for the app's PostgreSQL test (tests/test_app_postgres.py).
# Debian's package, installed only when initdb is missing and only where apt-get can run as
# root; setup never fails because of it (the test then skips, saying initdb was not found).
# Debian keeps initdb off PATH, in /usr/lib/postgresql/<version>/bin, where the test looks too.
found_initdb=""
command -v initdb >/dev/null 2>&1 && found_initdb=initdb
for b in /usr/lib/postgresql/*/bin/initdb; do
  [ -x "$b" ] && found_initdb="$b"
done
if [ -z "$found_initdb" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing postgresql (apt-get) for the app's PostgreSQL test" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          postgresql; } >/tmp/careval-apt-postgresql.log 2>&1; then
      echo "setup: could not install postgresql (see /tmp/careval-apt-postgresql.log);" \
        "the PostgreSQL test will be skipped" >&2
    fi
  else
    echo "setup: initdb not found and apt-get unavailable; the PostgreSQL test will be skipped" >&2
  fi
fi
