#!/usr/bin/env bash
# Set up (once) and run the whole kdviz test suite: unit, integration, notebooks, AppTest and
# real-browser tests (headless Debian Chromium, installed here with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,sweep  # sweep: Ray Tune, so the sweep tests run

if ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null
  else
    echo "warning: /usr/bin/chromium is missing and apt-get is not usable: browser tests will be skipped" >&2
  fi
fi
[ -x /usr/bin/chromium ] && export KDVIZ_REQUIRE_BROWSER=1

export MPLBACKEND=Agg PYTHONUNBUFFERED=1
mkdir -p artifacts
# Two workers (pytest-xdist): a test file stays on one worker (module fixtures train once) and the
# browser tests all run on one worker, first (tests/conftest.py);
# KDVIZ_TEST_WORKERS=0 runs everything in this process (for a debugger or -x).
workers="${KDVIZ_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest -q -ra --durations=15 "$@"
fi
exec .venv/bin/python -m pytest -q -ra --durations=15 -n "$workers" --dist loadfile "$@"
