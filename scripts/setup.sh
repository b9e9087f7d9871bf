#!/usr/bin/env bash
# Make ./.venv and install kdviz into it (editable), with the extras named in $1 (e.g. "dev" or "dev,docs").
# pip runs again only when pyproject.toml changed since the last install or an extra is asked for that
# was not installed: an install with more extras satisfies one with fewer (after `test.sh` installed
# the dev extra, `lab.sh` starts at once). One stamp, .venv/.kdviz-installed, holds
# "<sha256 of pyproject.toml> <extras installed, comma-separated>".
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "kdviz needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv

# A sorted, de-duplicated, comma-separated list of extras from any mix of commas and spaces.
normalise() { tr ', ' '\n\n' <<<"$*" | sed '/^$/d' | sort -u | paste -sd, -; }

stamp=".venv/.kdviz-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
read -r have_hash have_extras 2>/dev/null <"$stamp" || true
have_hash="${have_hash:-}"
have_extras="${have_extras:-}"
# Stamps of older versions of this script: .venv/.kdviz-installed-<extra>, holding only the hash.
for old in .venv/.kdviz-installed-*; do
  if [ -f "$old" ] && [ "$(cat "$old")" = "$want" ]; then
    have_hash="$want"
    have_extras="$have_extras,${old#.venv/.kdviz-installed-}"
  fi
done
have_extras="$(normalise "$have_extras")"
asked="$(normalise "${1:-}")"
missing="$(comm -23 <(tr ',' '\n' <<<"$asked" | sed '/^$/d') <(tr ',' '\n' <<<"$have_extras" | sed '/^$/d'))"

if [ "$have_hash" != "$want" ] || [ -n "$missing" ]; then
  # Install the union: extras installed before stay up to date with pyproject.toml.
  extras="$(normalise "$have_extras,$asked")"
  echo "Installing kdviz${extras:+[$extras]} into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned: 2.13.0 is the CPU wheel here; an open range would fetch a CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  echo "$want $extras" >"$stamp"
  rm -f .venv/.kdviz-installed-*
fi
