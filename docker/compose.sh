#!/bin/sh
# `docker compose` with the project root as the project directory (so .env and
# every relative path resolve there, for docker/node.compose.yml too) and the
# image version taken from VERSION.txt, so the images' version label always
# matches it. Every argument goes to docker compose:
#   ./docker/compose.sh up -d --build
#   ./docker/compose.sh --profile nvenc up -d
#   ./docker/compose.sh -f docker/node.compose.yml up -d --build
set -eu
cd "$(dirname "$0")/.."
CODECSHIFT_IMAGE_VERSION=$(tr -d '[:space:]' < VERSION.txt)
export CODECSHIFT_IMAGE_VERSION
exec docker compose --project-directory . "$@"
