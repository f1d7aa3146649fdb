#!/usr/bin/env bash
# setup.sh - installs what pcache needs on a fresh Debian 12 machine: build tools and
# libraries from Debian's packages, then the default model and any models named as arguments
# (scripts/get_model.sh names; test.sh asks for qwen2.5-coder-0.5b, the golden test's model).
# Idempotent: installs only what is missing. Run as root (or with sudo available) on a fresh machine.
#   scripts/setup.sh [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev libxml2-dev libjansson-dev
      libmicrohttpd-dev libhiredis-dev libssl-dev libxxhash-dev redis-server redis-tools nginx-light
      python3 python3-pip python3-venv ca-certificates)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

scripts/get_model.sh >/dev/null
for model in "$@"; do scripts/get_model.sh "$model" >/dev/null; done
