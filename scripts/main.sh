#!/usr/bin/env bash
# Set up .venv, then run the main job: the embedded default training run
# (a tiny Llama built locally, supervised warm-up, then GRPO on the built-in
# arithmetic task; CPU, a few minutes). Extra args are Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/rlvr-train "$@"
