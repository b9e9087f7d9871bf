#!/usr/bin/env bash
# Set up (once) and start the kdviz lab on the bundled digits data: http://localhost:8501
# It listens on 127.0.0.1 only. To share it on purpose: KDVIZ_ADDRESS=0.0.0.0 bash scripts/lab.sh
# (or pass --server.address ...; see "Exposing the lab on a network" in README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --browser.gatherUsageStats false \
  --server.address "${KDVIZ_ADDRESS:-127.0.0.1}" "$@"
