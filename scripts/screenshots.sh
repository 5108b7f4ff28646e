#!/usr/bin/env bash
# The screenshots of the report's top shown in the README: desktop (1366 x 900) and phone
# (390 x 844 at 2x), taken with Debian's headless Chromium from a report already written.
#
#   bash scripts/screenshots.sh careval-demo/report.html   # writes docs/img/report-*.png
set -euo pipefail
page=${1:?usage: scripts/screenshots.sh REPORT.html [OUT_DIR]}
out=${2:-docs/img}
[ -f "$page" ] || { echo "screenshots: no such report: $page" >&2; exit 2; }
browser=""
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
[ -n "$browser" ] || { echo "screenshots: no Chromium found (bash scripts/setup.sh installs it)" >&2; exit 2; }
mkdir -p "$out"
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shot() {  # name width height scale
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size="$2,$3" --force-device-scale-factor="$4" \
    --screenshot="$out/$1" "$url" >/dev/null 2>&1
  echo "$out/$1"
}
shot report-desktop.png 1366 900 1
shot report-phone.png 390 844 2
