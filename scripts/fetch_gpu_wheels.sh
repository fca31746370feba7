#!/usr/bin/env bash
# Fetches, here (pip needs network), the wheels scripts/gpu_check.sh installs on a bare GPU machine:
# what rlvr's training path imports beyond the PyTorch (CUDA), transformers, peft and accelerate
# that machine has, for its Python 3.12, into .gpu_wheels/ (ignored by git; carry it there).
#
#   bash scripts/fetch_gpu_wheels.sh
#
# An explicit, pinned list (the versions the dev venv tests), each --no-deps:
#   hydra-core, omegaconf, antlr4-python3-runtime 4.9.3 (hydra's pin; an sdist only: built here),
#   latex2sympy2_extended (the math verifier), and for DeepSpeed ZeRO-2: deepspeed (an sdist only:
#   built here with --no-build-isolation, which needs torch in this Python; without it ZeRO-2 is
#   skipped there), hjson, pydantic with pydantic-core, annotated-types, typing-inspection and
#   typing-extensions (pydantic needs >= 4.16). DeepSpeed's other needs (einops, msgpack, ninja,
#   psutil, py-cpuinfo) are on that machine; `datasets` is not needed (the training path imports it
#   only to read a `datasets` name) and vllm is far too big.
# Ends with the total size, which must stay under the 64 MiB that travels with the working tree.
#
# Environment: PYTHON (a Python with pip; default .venv/bin/python, else python3),
# GPU_WHEELS_PYTHON (target Python version, default 3.12), GPU_WHEELS_DIR (default .gpu_wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
TARGET="${GPU_WHEELS_PYTHON:-3.12}"
DEST="${GPU_WHEELS_DIR:-.gpu_wheels}"
LIMIT_MIB=64

WHEELS=(hydra-core==1.3.8 omegaconf==2.3.1 latex2sympy2_extended==1.11.0 hjson==3.1.0 pydantic==2.14.4
    pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0)
SDISTS=(antlr4-python3-runtime==4.9.3)  # pure Python, published as an sdist only: a py3-none-any wheel built here
DEEPSPEED=deepspeed==0.19.8             # likewise, but its setup.py imports torch

rm -rf "$DEST"  # one version of each: two would stop the install there
mkdir -p "$DEST"
pip_() { "$PYTHON" -m pip --disable-pip-version-check "$@"; }
echo "fetch_gpu_wheels: ${#WHEELS[@]} wheels for Python $TARGET (manylinux x86_64) into $DEST"
pip_ download -q --no-deps --only-binary=:all: --python-version "$TARGET" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$DEST" "${WHEELS[@]}"
echo "fetch_gpu_wheels: building ${SDISTS[*]} from its sdist"
pip_ wheel -q --no-deps -w "$DEST" "${SDISTS[@]}"
echo "fetch_gpu_wheels: building $DEEPSPEED from its sdist (no compiled ops: they build on first use)"
if ! pip_ wheel -q --no-deps --no-build-isolation -w "$DEST" "$DEEPSPEED" >"$DEST/.deepspeed-build.log" 2>&1; then
    echo "fetch_gpu_wheels: $DEEPSPEED did not build (needs torch in $PYTHON; log $DEST/.deepspeed-build.log):" \
        "the check will skip ZeRO-2" >&2
fi
for w in "$DEST"/*.whl; do
    case "$(basename "$w")" in
        *-none-any.whl | *-cp${TARGET/./}-*.whl | *-abi3-*.whl) ;;
        *) echo "fetch_gpu_wheels: $(basename "$w") is not for Python $TARGET" >&2; exit 1 ;;
    esac
done

bytes=$(cat "$DEST"/*.whl | wc -c)
tree=$(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ls -1 "$DEST"/*.whl | sed 's|.*/|  |'
echo "fetch_gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels, $(mib "$bytes") MiB; with the tracked tree" \
    "($(mib "$tree") MiB): $(mib $((bytes + tree))) MiB of the $LIMIT_MIB MiB that travel"
if [ $((bytes + tree)) -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "fetch_gpu_wheels: over $LIMIT_MIB MiB: the working tree and the wheels would not travel" >&2
    exit 1
fi
