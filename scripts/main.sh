#!/usr/bin/env bash
# Set up .venv, then run the main job: score the shipped example dataset with the math verifier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
exec .venv/bin/rlvr-verify math --input examples/math_answers.jsonl --output runs/math_answers.verified.jsonl "$@"
