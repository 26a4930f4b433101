#!/usr/bin/env bash
# bootstrap.sh — makes a fresh Debian 12 machine ready to build bmojo, then configures and builds.
# Installs only the Debian packages that are missing (as root, or through sudo), runs meson setup
# once and ninja every time. Usage: tools/bootstrap.sh [BUILD_DIR] [extra packages...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
shift || true
packages=(ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev libyaml-dev meson ninja-build
          pkg-config gcc python3 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cd "$root"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
