#!/usr/bin/env bash
# Prepare a fresh machine: Debian's ffmpeg when missing, a virtualenv in .venv,
# and CodecShift installed into it. Safe to run again. Used by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

want_packages=("$@")
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
for pkg in "${want_packages[@]}"; do
  case "$pkg" in
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: ${missing[*]} missing and neither root nor sudo is available to install them" >&2; exit 1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
extras=${CODECSHIFT_EXTRAS:-}
stamp=.venv/.codecshift-installed${extras:+-$extras}
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "==> installing CodecShift${extras:+ [$extras]} into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
