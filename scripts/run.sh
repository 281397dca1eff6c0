#!/usr/bin/env bash
# Install what is missing and run CodecShift on its embedded default:
# SQLite and a filesystem broker in ./codecshift-data, a worker, beat and the
# dashboard, on a sample library generated with ffmpeg unless one is given.
#   ./scripts/run.sh                  sample library
#   ./scripts/run.sh --library /media/movies
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/codecshift up "$@"
