#!/usr/bin/env bash
# The real-model run: set up .venv (as scripts/main.sh does), add the GGUF reader and the
# SmolLM2-135M-Instruct weights (scripts/setup_smollm2.sh), then train it with GRPO on the built-in arithmetic
# task (`rlvr-train +experiment=smollm2_arith`; about 25 minutes on a 2-core CPU).
# Extra args are Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_smollm2.sh
exec .venv/bin/rlvr-train +experiment=smollm2_arith "$@"
