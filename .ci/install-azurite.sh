#!/usr/bin/env bash
# Install Azurite (the Azure Storage emulator, npm package "azurite") into .ci/azurite.
# Idempotent: returns at once when the pinned version is already there.
# Prints the path of the azurite-queue executable on its last line; azurite-blob (the blob
# service the Azure datastore tests start) sits beside it and is found there.
set -euo pipefail

AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"  # 3.36+ needs node >= 21
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${AZURITE_PREFIX:-$here/azurite}"
bin="$prefix/node_modules/.bin/azurite-queue"
installed="$prefix/node_modules/azurite/package.json"

if [[ -x "$bin" && -x "$(dirname "$bin")/azurite-blob" && -f "$installed" ]] \
    && grep -q "\"version\": \"$AZURITE_VERSION\"" "$installed"; then
    echo "$bin"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "npm not found; installing nodejs and npm with apt-get" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
    else
        echo "npm not found: install Node.js (>= 18) and npm first" >&2
        exit 1
    fi
fi

# Only node_modules/ is written (no package.json, no lock file): nothing here to commit.
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save --no-package-lock --loglevel=error \
    "azurite@$AZURITE_VERSION" >&2
"$bin" --version >&2
echo "$bin"
