#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole test suite.
# System packages (root + apt only): chromium for the browser test, docker-compose to validate
# docker-compose.yml, FFmpeg's libraries for torchcodec. Without them those tests skip, with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    # FFmpeg's shared libraries for torchcodec (the "torchcodec" decode backend's CPU tests)
    ldconfig -p | grep -q 'libavutil\.so\.' || missing+=(ffmpeg)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest "$@"
