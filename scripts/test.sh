#!/usr/bin/env bash
# Set up .venv (and the real-model path's own set-up, so its install is tested too), then run the
# default test suite: CPU, everything but `slow` and `gpu`, the `learning` tests included.
# Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_smollm2.sh
exec .venv/bin/python -m pytest "$@"
