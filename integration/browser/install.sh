#!/usr/bin/env bash
# Makes sure Chromium and ChromeDriver from Debian's packages are installed
# (the dashboard test drives them), installing them with apt-get when they
# are missing, and prints CHROMEDRIVER=<path> for the caller to export:
#   export "$(integration/browser/install.sh)"
set -euo pipefail
driver=/usr/bin/chromedriver
if [[ ! -x /usr/bin/chromium || ! -x $driver ]]; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "integration/browser/install.sh: Chromium is missing and installing it needs root: apt-get install chromium chromium-driver" >&2; exit 1; }
    sudo=sudo
  fi
  echo "integration/browser/install.sh: installing chromium and chromium-driver from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q chromium chromium-driver >&2; then
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q chromium chromium-driver >&2
  fi
fi
"$driver" --version >&2
echo "CHROMEDRIVER=$driver"
