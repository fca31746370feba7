#!/usr/bin/env bash
# The prepared GPU check (issue 20, part 8), sized for a bare GPU machine that has Python 3.12 with
# PyTorch (CUDA), transformers, peft and accelerate, no network, and 64 MiB of carried files.
#
#   bash scripts/fetch_gpu_wheels.sh       # first, here, with network: .gpu_wheels/ (ignored by git)
#   bash scripts/gpu_check.sh              # then on the GPU machine, from the repository root
#
# Part A (under 5 minutes on an H100): a model of Qwen2.5-0.5B's configuration with random weights
# and a tokenizer built locally (scripts/gpu_check_model.py), `python -m rlvr.train` with the hf
# engine and bf16, 4 steps of 8 prompts x 4 completions x 128 new tokens, a length reward with
# spread on random text (so every update runs), in these configurations:
#   full_bf16   full fine-tuning, bf16 autocast over fp32 weights (the keys that exist today)
#   full_gc     full fine-tuning, bf16 weights, gradient checkpointing
#   lora16_gc   LoRA rank 16, bf16 weights, gradient checkpointing
#   zero2_gc    DeepSpeed ZeRO-2 on one GPU under torchrun, bf16 weights, gradient checkpointing
#               (skipped, and said, when deepspeed does not import)
# Each prints step time, generated tokens/s, peak GPU memory and the learner's log-prob gap
# to the engine; a configuration that fails is reported and the check goes on.
# Part B: the `gpu`-marked tests (vLLM sleep/wake) where `import vllm` works, else one line.
# Last: a summary table, also written to $OUT/gpu_check.json when $OUT is set (with the runs'
# log tails in $OUT/gpu_check_logs.txt).
#
# Without a GPU it prints one line and exits 2. GPU_CHECK_CPU=1 is a dry run for development
# only: the same Part A with tiny sizes on the CPU (so the commands can be checked anywhere);
# its figures mean nothing. Exit status: 0 when every configuration that ran passed, 1 otherwise.
#
# Environment: GPU_CHECK_PYTHON (default python3), GPU_CHECK_DIR (work folder, default a new
# /tmp/gpu_check.*), GPU_CHECK_WHEELS (the wheels' folder, default .gpu_wheels), GPU_CHECK_ONLY (comma-separated configurations), GPU_CHECK_RUN_TIMEOUT
# (seconds per run), GPU_CHECK_PART_A_BUDGET (seconds for all of Part A; later runs are skipped).
set -u
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="${GPU_CHECK_PYTHON:-python3}"
CPU="${GPU_CHECK_CPU:-0}"

# ---- a GPU, or one line and exit 2 -------------------------------------------------------
if [ "$CPU" != 1 ]; then
    if ! "$PY" -c "import torch" >/dev/null 2>&1; then
        echo "error: $PY cannot import torch; run the GPU check with a Python that has PyTorch (GPU_CHECK_PYTHON=...)" >&2
        exit 2
    fi
    if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
        echo "error: no CUDA GPU here (torch.cuda.is_available() is False): run scripts/gpu_check.sh on a GPU machine (GPU_CHECK_CPU=1 is a CPU dry run, for development only)" >&2
        exit 2
    fi
fi

WORK="${GPU_CHECK_DIR:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
mkdir -p "$WORK/logs" "$WORK/runs"
: >"$WORK/runs.tsv"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false RLVR_CACHE="$WORK/cache"
section() { printf '\n==== %s ====\n' "$*"; }

# ---- set-up: the carried wheels and rlvr, without network --------------------------------
section "set-up"
# The wheels go into a --target folder on PYTHONPATH, not into a venv: on the GPU machine python3
# is itself a venv (/opt/torch/.venv), and a venv made from it with --system-site-packages sees the
# base interpreter's packages, not that venv's PyTorch. rlvr itself is the repository on PYTHONPATH.
SITE="$WORK/site"
wheels=("${GPU_CHECK_WHEELS:-.gpu_wheels}"/*.whl)
if [ -e "${wheels[0]}" ]; then
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
            --target "$SITE" "${wheels[@]}" >"$WORK/logs/pip.log" 2>&1; then
        echo "set-up failed: pip could not install .gpu_wheels/ (log: $WORK/logs/pip.log):"
        tail -n 5 "$WORK/logs/pip.log"
        exit 1
    fi
    echo "installed ${#wheels[@]} wheels from ${GPU_CHECK_WHEELS:-.gpu_wheels}/ into $SITE"
else
    echo "no .gpu_wheels/ here (bash scripts/fetch_gpu_wheels.sh fetches them): using what $PY has"
fi
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import hydra, omegaconf, rlvr.train" >"$WORK/logs/import.log" 2>&1; then
    echo "set-up failed: rlvr does not import ($(tail -n 1 "$WORK/logs/import.log")); run bash scripts/fetch_gpu_wheels.sh where pip has network and carry .gpu_wheels"
    exit 1
fi
HAVE_DS=0
"$PY" -c "import deepspeed" >"$WORK/logs/deepspeed_import.log" 2>&1 && HAVE_DS=1
"$PY" - <<'EOF'
import importlib.metadata as md, sys, torch
names = ("torch", "transformers", "peft", "accelerate", "hydra-core", "deepspeed", "vllm")
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "absent"
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
print(f"python {sys.version.split()[0]}; device: {device}; " + ", ".join(f"{n} {version(n)}" for n in names))
EOF

# ---- Part A: training runs -----------------------------------------------------------------
if [ "$CPU" = 1 ]; then
    section "Part A (GPU_CHECK_CPU=1: a CPU dry run with tiny sizes, for development only)"
    TINY=--tiny DEVICE=cpu STEPS=2 PROMPTS=4 NEW_TOKENS=16 EVAL_SIZE=4 RUN_TIMEOUT="${GPU_CHECK_RUN_TIMEOUT:-180}"
else
    section "Part A: Qwen2.5-0.5B's shape (random weights), hf engine, bf16"
    TINY= DEVICE=cuda STEPS=4 PROMPTS=8 NEW_TOKENS=128 EVAL_SIZE=8 RUN_TIMEOUT="${GPU_CHECK_RUN_TIMEOUT:-150}"
fi
BUDGET="${GPU_CHECK_PART_A_BUDGET:-420}"
ONLY="${GPU_CHECK_ONLY:-}"
MODEL="$WORK/model"
part_a_start=$SECONDS
if ! timeout -k 10 300 "$PY" scripts/gpu_check_model.py "$MODEL" $TINY >"$WORK/logs/model.log" 2>&1; then
    echo "Part A failed: the model could not be built (log: $WORK/logs/model.log):"
    tail -n 5 "$WORK/logs/model.log"
    exit 1
fi
grep '^model:' "$WORK/logs/model.log"

# Every run: the local model, bf16 compute, the hf engine, few steps, a tiny evaluation, and a
# reward with spread on random text: 1 - (characters / 1000), never flat within a group.
COMMON=(model=local "model.path=$MODEL" model.dtype=bf16 "model.device=$DEVICE" rollout.engine=hf
    "rollout.max_new_tokens=$NEW_TOKENS" rollout.temperature=1.0 algorithm.group_size=4
    "trainer.prompts_per_step=$PROMPTS" trainer.micro_batch_size=8 "trainer.total_steps=$STEPS"
    trainer.optim.lr=1e-5 trainer.keep_checkpoints=1 "data.eval_size=$EVAL_SIZE" trainer.eval.num_samples=1
    trainer.eval.k=1 reward.workers=1
    "reward.sources=[{name: length, kind: rule, check: length_budget, options: {max_chars: 0, falloff_chars: 1000}}]")
NEW_KEYS=(model.weights_dtype=bf16 trainer.gradient_checkpointing=true)

run_config() {  # NAME LAUNCHER(python|torchrun) OVERRIDE...: one run, reported, never fatal
    local name=$1 launcher=$2
    shift 2
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then
        return
    fi
    local dir="$WORK/runs/$name" log="$WORK/logs/$name.log" left=$((BUDGET - (SECONDS - part_a_start)))
    echo "--- $name: ${*:-(the common settings only)}"
    if [ "$left" -lt 30 ]; then
        echo "    skipped: Part A's ${BUDGET}s budget is spent"
        printf '%s\tskipped\t-\t0\t%s\t%s\tPart A budget spent\t%s\n' "$name" "$dir" "$log" "$*" >>"$WORK/runs.tsv"
        return
    fi
    local limit=$((left < RUN_TIMEOUT ? left : RUN_TIMEOUT))
    local cmd=("$PY" -m rlvr.train)
    if [ "$launcher" = torchrun ]; then
        cmd=("$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m rlvr.train)
    fi
    local t0=$SECONDS rc
    timeout -k 10 "$limit" "${cmd[@]}" "hydra.run.dir=$dir" "${COMMON[@]}" "$@" >"$log" 2>&1
    rc=$?
    local took=$((SECONDS - t0)) why=""
    if [ "$rc" = 0 ]; then
        echo "    ok in ${took}s"
    else
        case "$rc" in
            124 | 137) why="timed out after ${limit}s" ;;
            *) why="$("$PY" scripts/gpu_check_summary.py --reason "$log")" ;;
        esac
        echo "    FAILED (exit $rc) in ${took}s: $why"
    fi
    printf '%s\tran\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$took" "$dir" "$log" "$(echo "$why" | tr '\t' ' ')" \
        "$*" >>"$WORK/runs.tsv"
    rm -rf "$dir/checkpoints"  # the 0.5B model with its optimizer state: gigabytes, never read again
}

run_config full_bf16 python
run_config full_gc python "${NEW_KEYS[@]}"
run_config lora16_gc python "${NEW_KEYS[@]}" model.lora.rank=16
if [ "$HAVE_DS" = 1 ]; then
    run_config zero2_gc torchrun "${NEW_KEYS[@]}" trainer.backend=deepspeed trainer.deepspeed.zero_stage=2
elif [ -z "$ONLY" ] || [[ ",$ONLY," == *",zero2_gc,"* ]]; then
    echo "--- zero2_gc: skipped: deepspeed does not import ($(tail -n 1 "$WORK/logs/deepspeed_import.log"))"
    printf 'zero2_gc\tskipped\t-\t0\t-\t-\tdeepspeed does not import\t-\n' >>"$WORK/runs.tsv"
fi
part_a_seconds=$((SECONDS - part_a_start))
echo "Part A took ${part_a_seconds}s (target on an H100: under 300s)"

# ---- Part B: vLLM sleep/wake, the gpu-marked tests -------------------------------------------
section "Part B: vLLM sleep/wake (pytest -m gpu)"
if [ "$CPU" = 1 ]; then
    part_b="skipped: GPU_CHECK_CPU=1 (Part B needs a GPU)"
elif ! "$PY" -c "import vllm" >/dev/null 2>&1; then
    part_b="awaits a machine with vLLM (import vllm fails here): the gpu-marked tests did not run"
else
    mapfile -t gpu_tests < <(grep -rlE 'mark\.gpu\b' tests --include='test_*.py')
    timeout -k 10 "${GPU_CHECK_PART_B_TIMEOUT:-300}" "$PY" -m pytest -m gpu -q -p no:cacheprovider \
        "${gpu_tests[@]}" 2>&1 | tee "$WORK/logs/part_b.log"
    rc=${PIPESTATUS[0]}
    part_b="$([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)"): $(tail -n 1 "$WORK/logs/part_b.log")"
fi
echo "Part B: $part_b"

# ---- summary -------------------------------------------------------------------------------
section "summary"
"$PY" scripts/gpu_check_summary.py "$WORK/runs.tsv" --part-a-seconds "$part_a_seconds" --part-b "$part_b" \
    --mode "$([ "$CPU" = 1 ] && echo cpu-dry-run || echo gpu)" --json "$WORK/gpu_check.json" \
    ${OUT:+--out-dir "$OUT"}
exit $?
