#!/usr/bin/env bash
# Make ./.venv and install kdviz into it (editable), with the extras named in $1 (e.g. "dev").
# pip runs again only when pyproject.toml changed since the last install, so restarts are quick.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "kdviz needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv

stamp=".venv/.kdviz-installed${extras:+-$extras}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "Installing kdviz${extras:+[$extras]} into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned: 2.13.0 is the CPU wheel here; an open range would fetch a CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  echo "$want" >"$stamp"
fi
