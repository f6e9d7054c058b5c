#!/usr/bin/env bash
# Debian's Chromium and its matching ChromeDriver for the dashboard's browser journeys
# (tests/tests/browser.rs), installed if missing. Prints only export lines on stdout:
#
#   eval "$(scripts/browser.sh)"     # PHT_CHROMIUM, PHT_CHROMEDRIVER
#
# Both come from the same Debian source package, so their versions match; the script checks.
set -euo pipefail
exec 3>&1 1>&2
cd "$(dirname "$0")/.."
scripts/apt-install.sh chromium chromium-driver
c="$(/usr/bin/chromium --version | grep -o '[0-9][0-9.]*' | head -1)"
d="$(/usr/bin/chromedriver --version | grep -o '[0-9][0-9.]*' | head -1)"
if [ "$c" != "$d" ]; then
  echo "browser.sh: chromium $c and chromedriver $d differ; reinstall both: apt-get install --reinstall chromium chromium-driver"
  exit 1
fi
echo "export PHT_CHROMIUM=/usr/bin/chromium PHT_CHROMEDRIVER=/usr/bin/chromedriver" >&3
