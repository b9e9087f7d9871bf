#!/usr/bin/env bash
# Set up (once) and start the kdviz lab on the bundled digits data: http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --browser.gatherUsageStats false "$@"
