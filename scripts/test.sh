#!/usr/bin/env bash
# Install what the tests need (ffmpeg, Chromium, the test extras) and run the suite.
# PostgreSQL and Redis must be reachable on 127.0.0.1 (see .ci/run).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k schema
set -euo pipefail
cd "$(dirname "$0")/.."
CODECSHIFT_EXTRAS=test ./scripts/bootstrap.sh chromium chromium-driver
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
