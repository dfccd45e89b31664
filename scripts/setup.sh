#!/usr/bin/env bash
# Idempotent set-up on Debian 12: QGIS 3.22 and GDAL from Debian, then a venv that sees them
# (--system-site-packages from /usr/bin/python3) with the pip packages. Usage: setup.sh [dev|train]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-dev}

apt_packages=(qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-numpy python3-scipy python3-venv
              python3-pip xvfb xauth pyqt5-dev-tools zip)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
requirements=(requirements-dev.txt)
[ "$profile" = train ] && requirements+=(requirements-train.txt)
stamp=".venv/.installed-$(cat constraints.txt requirements.txt "${requirements[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing pip packages from ${requirements[*]}"
    args=(); for file in "${requirements[@]}"; do args+=(-r "$file"); done
    .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt "${args[@]}"
    touch "$stamp"
fi
# The plugin is imported as `dtm_estimator`: link the repository under that name.
mkdir -p build/plugins
ln -sfn "$(pwd)" build/plugins/dtm_estimator
