#!/bin/sh
# Build-time guard: the VERSION build arg (which becomes the image's
# org.opencontainers.image.version label) must equal VERSION.txt, the only
# place the version is written. A Dockerfile cannot read a file into a label,
# so compose passes the arg from CODECSHIFT_IMAGE_VERSION and this check makes
# a stale or missing value fail the build instead of mislabelling the image.
#   usage: check-version.sh VERSION_ARG PATH/TO/VERSION.txt
set -eu
arg=${1:-}
file=${2:-VERSION.txt}
if [ ! -f "$file" ]; then
    echo "check-version: $file not found" >&2
    exit 1
fi
want=$(tr -d '[:space:]' < "$file")
if [ -z "$arg" ]; then
    echo "check-version: the VERSION build arg is empty; build with" >&2
    echo "    CODECSHIFT_IMAGE_VERSION=\$(cat VERSION.txt) docker compose build" >&2
    echo "or  ./docker/compose.sh build" >&2
    exit 1
fi
if [ "$arg" != "$want" ]; then
    echo "check-version: VERSION build arg is '$arg' but VERSION.txt says '$want';" >&2
    echo "    export CODECSHIFT_IMAGE_VERSION=\$(cat VERSION.txt) and build again" >&2
    exit 1
fi
echo "check-version: building CodecShift $want"
