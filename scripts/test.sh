#!/usr/bin/env bash
# Set up .venv, then run the default (CPU, not slow) test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
