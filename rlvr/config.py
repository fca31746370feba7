"""Typed configuration: every knob of `rlvr-train`, declared and documented once.

The schemas below are registered in Hydra's ConfigStore as ``rlvr_schema`` and are the
first entry of ``conf/config.yaml``'s defaults list, so every YAML file under ``conf/``
and every command-line override is merged onto them: an unknown key or a value of
the wrong type is an error when the config is composed, never silently ignored.
`rlvr.config_checks.validate` then checks the relations between fields (batch
arithmetic, registry names, reward mixes) and names the fix when they do not hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from rlvr.errors import UserError
from rlvr.eval.config import RubricConfig, WatchConfig

__all__ = [
    "ModelConfig", "LoraConfig", "SFTConfig", "DataConfig", "PtxDataConfig", "ArithmeticConfig", "CodingConfig", "PreferenceTaskConfig",
    "AlgorithmConfig", "CriticConfig", "RolloutConfig",
    "HFRolloutConfig", "VLLMRolloutConfig", "DeepSpeedConfig",
    "OptimConfig", "EvalConfig", "TrainerConfig", "RewardSource", "RewardConfig", "TruthConfig", "LoggerConfig",
    "TrainConfig", "ConfigError", "check_verifier", "check_known_keys", "register_schemas", "CONF_DIR",
]



def check_known_keys(node: Any, where: str = "") -> None:
    """Every key of a composed config is a field of its schema: a key Hydra accepted with ``+key=`` or
    ``++key=`` for a field the schema lacks is a `ConfigError` naming the closest valid key, never a
    setting written to config.yaml and ignored. Free-form fields (``dict[str, Any]`` options) are not
    schema-typed and take any key."""
    import dataclasses
    import difflib

    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, ListConfig):
        for i, item in enumerate(node):
            check_known_keys(item, f"{where}.{i}" if where else str(i))
        return
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    known = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        dotted = f"{where}.{key}" if where else str(key)
        if known is not None and key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
            hint = f"did you mean {where + '.' if where else ''}{close[0]}?" if close else \
                f"valid keys{' of ' + where if where else ''}: {', '.join(known)}"
            raise ConfigError(f"unknown config key {dotted}: {hint} (`--cfg job` prints every key)")
        if known is not None:
            check_known_keys(node._get_node(key), dotted)  # type: ignore[attr-defined]


def _conf_dir() -> str:
    """The Hydra config root: the repository's top-level ``conf/`` in a source tree or an editable
    install; a built wheel carries a copy as ``rlvr/conf`` (setup.py copies it at build time).
    `--config-dir DIR` adds a directory of the user's own presets to either."""
    package = Path(__file__).resolve().parent
    shipped = package / "conf"
    return str(shipped if (shipped / "config.yaml").is_file() else package.parent / "conf")


CONF_DIR = _conf_dir()


@dataclass
class SFTConfig:
    steps: int = 0  # supervised warm-up steps on the task's reference solutions before RL (0 = none)
    batch_size: int = 32  # prompts per warm-up step
    lr: float = 3e-3  # warm-up AdamW learning rate (cosine-decayed to 10%)
    stop_at_accuracy: float = 0.0  # stop early once greedy accuracy on probe training prompts reaches this (0 = off)
    check_every: int = 25  # steps between those accuracy probes
    probe_size: int = 64  # training prompts in the probe


@dataclass
class LoraConfig:
    rank: int = 0  # LoRA adapter rank (0 = off: every weight trains); the reference model is the base with the
    #                adapter disabled (no second copy); checkpoints hold the adapter (rlvr-export merges it)
    alpha: float = 32.0  # LoRA scaling numerator (the update is scaled by alpha / rank)
    dropout: float = 0.0  # dropout on the adapter's input
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])  # module names (suffixes) that get
    #   an adapter; all-linear = every linear layer but the output head


@dataclass
class ModelConfig:
    path: Optional[str] = None  # local Hugging Face model directory; null = build the embedded tiny Llama
    cache_dir: str = "${oc.env:RLVR_CACHE,'~/.cache/rlvr'}"  # where built tiny models (and their warm-ups) are cached
    hidden_size: int = 64  # tiny Llama only: width
    num_layers: int = 2  # tiny Llama only: decoder layers
    num_heads: int = 4  # tiny Llama only: attention heads
    intermediate_size: int = 256  # tiny Llama only: MLP width
    max_positions: int = 256  # tiny Llama only: context length in tokens (characters); prompt + completion must fit
    tiny_tokenizer: str = "chars"  # tiny Llama only: chars (the embedded default) | chars_tools (+ a <|tool|> role
    #                                 for tool outputs: the tool-use preset, conf/experiment/tiny_tools.yaml)
    dtype: str = "fp32"  # compute precision: fp32 | bf16 (autocast); fp16 is refused (it needs loss scaling)
    weights_dtype: str = "fp32"  # the policy's stored weights: fp32 | bf16 (bf16 needs dtype=bf16)
    master_dtype: str = "fp32"  # the optimizer's master copy of the trained weights and its states: fp32 | bf16
    #   (fp32 with bf16 weights: an fp32 copy is stepped and copied back; bf16: no copy, states in bf16)
    frozen_dtype: Optional[str] = None  # stored weights of frozen models (reference, reward models, a local judge):
    #   bf16 | fp16 | fp32 | auto (what the checkpoint says); null = follow the compute precision (dtype)
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2 (where flash-attn is installed)
    lora: LoraConfig = field(default_factory=LoraConfig)  # a LoRA adapter instead of full fine-tuning (PEFT)
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N
    sft: SFTConfig = field(default_factory=SFTConfig)  # optional warm-up before RL (cached for tiny models)


@dataclass
class ArithmeticConfig:
    difficulty: int = 2  # 1: a+b 1 digit; 2: a+b 2+1 digits; 3: a+b 2 digits; 4: a±b 2 digits; 5: a±b±c; 6: a±b 3 digits
    spaced: bool = False  # "36 + 3" instead of "36+3" (how people, and chat models' training data, write it)
    num_train: int = 100_000  # size of the (lazily generated) training stream before it repeats
    seed: int = 0  # problem generator seed (held-out problems never appear in training)


@dataclass
class ProductsConfig:
    min_digits: int = 3  # each operand of a*b has min_digits..max_digits digits (drawn uniformly)
    max_digits: int = 4
    tool_format: Optional[str] = None  # null: answer directly | fenced | json: prompts offer the python tool and the
    #   supervised targets show a call in that format (keep it equal to rollout.tools.call_format)
    num_train: int = 100_000  # size of the (lazily generated) training stream before it repeats
    seed: int = 0  # problem generator seed (held-out problems never appear in training)


@dataclass
class CodingConfig:
    difficulty: int = 2  # 1: x+k; 2: also x-k, x*k; 3: also two arguments, max/min, abs; 4: also two steps; 5: also lists
    num_train: int = 100_000  # size of the (lazily generated) training stream before it repeats
    seed: int = 0  # problem generator seed (held-out prompts never appear in training)
    num_cases: int = 4  # `call`-harness test cases per problem (all must pass for reward 1)


@dataclass
class PreferenceTaskConfig:
    seed: int = 0  # order of the training stream and draws of its SFT solutions (the held-out split is fixed)
    num_train: int = 100_000  # size of the training stream (cycles over the task's 300 training prompts)
    weak_prob: float = 0.3  # how often SFT solutions meet their phrasing's weak dimension (< 0.5: greedy SFT misses it)


@dataclass
class JudgePairsConfig:
    seed: int = 0  # order of the training stream, the built-in task's answer draws and its judge traces
    num_train: int = 100_000  # built-in task: training prompts in the stream (each pair appears in both orders)
    instruction: str = "Which answer is better?"  # the judge prompt's first line, before the question and answers
    weak_item: Optional[str] = "correct"  # built-in task: the rubric item its SFT traces evaluate sloppily (null:
    #   none): a trace checks it only when a draw falls below weak_prob, else marks it met on both answers
    weak_prob: float = 0.4  # how often a trace checks the weak item (one draw per trace): below 0.5, so the
    #   warm-up judge's greedy verdict skips it, near enough that its samples check it often


@dataclass
class PtxDataConfig:
    source: str = "arithmetic"  # registered prompt source of the pretraining mix (its rows need target completions)
    path: Optional[str] = None  # file source: the dataset's path
    prompt_template: Optional[str] = None  # phrasing of the mix's prompts (as data.prompt_template)
    system_prompt: Optional[str] = None  # system message of the mix's prompts (as data.system_prompt)
    batch_size: int = 8  # rows per optimizer step


@dataclass
class DataConfig:
    source: str = "arithmetic"  # a registered prompt source: arithmetic | coding | products | preference |
    #   judge_pairs | file
    path: Optional[str] = None  # file source: jsonl/json/parquet/csv path or a `datasets` name readable offline
    split: str = "train"  # file source: split used for training
    eval_path: Optional[str] = None  # file source: held-out file (null = carve eval_size rows off the training data)
    eval_split: str = "test"  # file source: split of eval_path used for evaluation
    format: str = "auto"  # file source: the rows' shape (verifiers.formats): auto | generic | gsm8k | math |
    #                       humaneval | mbpp | apps; auto = the generic columns below where the file has its
    #                       reference column (or no format fits), else the one format its columns fit
    prompt_field: str = "prompt"  # row field with the prompt text (used when the row has no messages)
    messages_field: str = "messages"  # row field with chat messages [{role, content}, ...]
    reference_field: str = "reference"  # row field with the gold answer / tests
    verifier_field: str = "verifier"  # row field naming the row's verifier (absent -> `verifier` below)
    verifier: str = "math"  # verifier for rows that do not name one
    system_prompt: Optional[str] = None  # prepended as a system message to every prompt (any source) when set
    prompt_template: Optional[str] = None  # e.g. "What is {prompt}? Answer with just the number." (any source)
    chat_template: str = "auto"  # how prompts become text: auto (the tokenizer's own chat template) | none (raw
    #   text, e.g. zero-RL from a base model: the system prompt, a blank line, the prompt) | PATH (a Jinja file used
    #   as the tokenizer's template, saved with the checkpoints); a template that rejects a system role gets the
    #   system prompt folded into the first user turn
    eval_size: int = 128  # held-out prompts used by periodic evaluation
    max_prompt_tokens: int = 512  # prompt length limit in tokens, checked for every prompt when the data is loaded
    on_long_prompt: str = "error"  # a prompt over max_prompt_tokens: error (names the row) | drop (dropped and counted)
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)  # the built-in arithmetic task
    coding: CodingConfig = field(default_factory=CodingConfig)  # the built-in function-writing task (`code` verifier)
    products: ProductsConfig = field(default_factory=ProductsConfig)  # built-in a*b task where tools matter
    ptx: PtxDataConfig = field(default_factory=PtxDataConfig)  # the pretraining mix's dataset (algorithm.ptx_coef > 0)
    preference: PreferenceTaskConfig = field(default_factory=PreferenceTaskConfig)  # the built-in preference task
    judge_pairs: JudgePairsConfig = field(default_factory=JudgePairsConfig)  # judge prompts from preference pairs


@dataclass
class CriticConfig:
    shared: bool = False  # false: a separate value model (its own trunk); true: a value head on the policy's own
    #   trunk, read without gradients (the value loss trains the head alone; no second model in memory)
    path: Optional[str] = None  # the critic's start: null = a fresh value head (separate: on a copy of the policy's
    #   start weights); a directory = a reward model (an rlvr-rm output: its head, and with shared=false its trunk)
    #   or, with shared=false, a causal LM; it must have the policy's vocabulary (separate) or width (shared)
    lr: float = 1e-5  # the critic's own AdamW learning rate (constant: no warm-up, no schedule)
    warmup_steps: int = 0  # first steps that train only the critic: the policy does not move during them
    value_clip: float = 0.2  # clipped value loss: new values stay within +-value_clip of the rollout's (0 = off)


@dataclass
class AlgorithmConfig:
    group_size: int = 8  # G: completions sampled per prompt
    advantage: str = "grpo"  # registered advantage estimator: grpo | rloo | gae (PPO, a critic: algorithm=ppo)
    scale: str = "group"  # reward scaling: group (GRPO) | batch | none (Dr. GRPO)
    loss: str = "clipped"  # registered policy loss: clipped
    aggregation: str = "token_mean"  # token_mean | seq_mean_token_mean | seq_mean_token_sum_norm (Dr. GRPO)
    epsilon_low: float = 0.2  # clip ratio below at 1 - epsilon_low
    epsilon_high: float = 0.2  # clip ratio above at 1 + epsilon_high (DAPO clip-higher: 0.28)
    beta: float = 0.0  # k3 KL coefficient to the frozen reference model; 0 = no reference model loaded
    num_iterations: int = 1  # passes over each rollout batch (sampling log-probs are the old policy)
    mask_truncated: bool = False  # exclude completions that hit max_new_tokens from the loss
    drop_zero_variance: bool = False  # drop groups whose rewards are all equal and refill from further prompts
    max_refill_rounds: int = 2  # cap on extra sampling rounds spent refilling dropped groups
    rollout_correction: Optional[str] = None  # engine/learner mismatch: none | token_truncate | token_mask |
    #   sequence_mask; null = the engine's default (hf: none, its log-probs are the learner's; vllm: token_truncate)
    rollout_correction_cap: float = 2.0  # the correction's cap C on the importance ratio exp(old - rollout)
    skip_flat_steps: bool = True  # skip the update when every group has zero reward spread and beta = 0 (no signal;
    #   never with a critic, PPO: its baseline is not the group mean)
    ptx_coef: float = 0.0  # pretraining mix (PPO-ptx): weight of a supervised loss on data.ptx in every update
    # PPO (advantage: gae, conf/algorithm/ppo.yaml): a critic, GAE and a KL leash of coefficient beta
    gamma: float = 1.0  # GAE discount per token
    lam: float = 0.95  # GAE lambda (1 = Monte-Carlo returns minus the value, 0 = one-step TD errors)
    whiten_advantages: bool = True  # GAE advantages to zero mean, unit variance over the batch's tokens
    kl_penalty: str = "reward"  # where the KL to the reference goes: reward (-beta * (logp - ref) per token, in
    #   the rewards GAE sees) | loss (beta * k3 KL per token in the policy loss, as GRPO's)
    kl_target: float = 0.0  # adaptive KL controller (Ziegler et al.): the KL per completion (summed over its
    #   tokens) that beta is steered towards; 0 = beta stays fixed
    kl_horizon: int = 10_000  # the controller's horizon in completions (larger = slower changes of beta)
    critic: CriticConfig = field(default_factory=CriticConfig)  # the value model (advantage: gae only)


@dataclass
class HFRolloutConfig:
    batch_size: int = 64  # sequences decoded together (0 = a whole generate call at once)


@dataclass
class VLLMRolloutConfig:
    gpu_memory_utilization: float = 0.3  # fraction of GPU memory vLLM may take (weights + KV cache), colocated
    max_model_len: int = 2048  # prompt + completion tokens per sequence
    dtype: str = "auto"  # auto (the learner's: fp32 | bf16) | float32 | bfloat16 | float16
    enable_prefix_caching: bool = True  # reuse the KV cache of shared prompt prefixes (reset at every weight sync)
    enforce_eager: bool = True  # no CUDA graphs: faster start, less memory (turn off for long GPU runs)
    sleep_level: int = 1  # GPU: 1 frees the KV cache and offloads weights while the learner trains; 2 discards
    #                       the weights too (they are pushed again on wake); 0 never sleeps. No-op on CPU
    cpu_kv_cache_gib: int = 1  # CPU only: KV-cache space in GiB (VLLM_CPU_KVCACHE_SPACE)


@dataclass
class ToolsConfig:
    """Tool calls inside the rollout (multi-turn; `rlvr.rollout.multiturn`, docs/tools.md). Empty ``names``
    and no ``env``: ordinary single-turn rollouts."""

    names: list[str] = field(default_factory=list)  # tools offered: python, calculator, or a plugin's (rlvr.tools)
    env: Optional[str] = None  # the environment (null: "tools" when names are set; or a registered one)
    env_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of a non-tool environment
    call_format: str = "json"  # json: <tool_call>{"name": ..., "arguments": {...}}</tool_call> | fenced: ```python
    max_calls: int = 4  # tool calls per rollout; a call past it gets an error message and the model must answer
    max_turns: int = 0  # model turns per rollout (0: 2 * max_calls + 2)
    timeout_s: float = 5.0  # wall time per call
    max_output_chars: int = 1024  # a call's output is cut to this (head and tail kept) before insertion
    max_context_tokens: int = 0  # prompt + completion, inserted ids included (0: the model's max positions)
    stateful: bool = True  # python: each cell sees the state its earlier cells left (replayed) | stateless
    workers: int = 0  # python: sandbox workers running cells concurrently (0: the CPU count)
    response_format: Optional[str] = None  # the text framing an output, with {output}, for templates without a
    #                                        tool role (null: read from the chat template)
    role: str = "tool"  # the role the template renders tool outputs under
    in_prompt: bool = True  # declare the tools in the prompt (the template's `tools` list), where the template can
    options: dict[str, Any] = field(default_factory=dict)  # per tool: {name: {option: value}}

    @property
    def enabled(self) -> bool:
        return bool(self.names) or self.env is not None


@dataclass
class RolloutConfig:
    engine: str = "hf"  # registered rollout engine: hf (transformers model, KV-cached decode loop)
    temperature: float = 1.0  # sampling temperature (log-probs are computed at this temperature)
    top_p: float = 1.0  # nucleus sampling (tokens drawn from the nucleus; log-probs over the full vocabulary)
    max_new_tokens: int = 256  # completion budget; completions that reach it are `truncated`
    hf: HFRolloutConfig = field(default_factory=HFRolloutConfig)  # options of the hf engine
    vllm: VLLMRolloutConfig = field(default_factory=VLLMRolloutConfig)  # options of the vllm engine
    tools: ToolsConfig = field(default_factory=ToolsConfig)  # tool calls inside the rollout (multi-turn)


@dataclass
class OptimConfig:
    lr: float = 1e-6  # AdamW peak learning rate
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0  # linear warm-up, in optimizer steps
    schedule: str = "constant"  # after warm-up: constant | linear | cosine (to min_lr_ratio at the last step)
    min_lr_ratio: float = 0.0  # linear / cosine decay ends at this fraction of lr
    max_grad_norm: float = 1.0  # gradient clipping (<= 0 disables)


@dataclass
class EvalConfig:
    every: int = 0  # evaluate the held-out set every N steps (0 = only before and after training)
    k: int = 4  # sampled pass@k
    num_samples: int = 4  # samples per prompt for pass@k (>= k)
    temperature: float = 1.0  # temperature of the pass@k samples (pass@1 is greedy)
    chunk: int = 64  # rlvr-eval: prompts scored and saved together (the progress and resume granularity)


@dataclass
class DeepSpeedConfig:
    zero_stage: int = 2  # 2: shard gradients and optimizer state; 3: also the parameters
    offload_optimizer: bool = False  # optimizer state (and its step) on the CPU
    offload_params: bool = False  # ZeRO-3 only: parameters on the CPU between uses
    stage3_param_persistence_threshold: int = 100_000  # ZeRO-3: parameters smaller than this stay whole on
    #   every rank (0 partitions everything: what tests of tiny models need)
    timeout_s: int = 600  # collective timeout: a rank that hangs or dies fails every rank after this long
    cache_dir: str = "${oc.env:RLVR_CACHE,'~/.cache/rlvr'}/torch_extensions"  # compiled ops (built once)
    bucket_size: int = 0  # elements per gradient-reduction / all-gather / ZeRO-3 prefetch bucket
    #   (0 = the model's hidden_size squared, at least 262144; DeepSpeed's own default is 5e8)
    max_live_parameters: int = 0  # ZeRO-3: gathered parameters kept (and reuse distance) before release
    #   (0 = 10 x bucket_size, at most 1e9, DeepSpeed's default: that keeps a small model gathered whole)
    sub_group_size: int = 0  # ZeRO-3: elements per optimizer sub-step; AdamW's temporaries scale with it
    #   (0 = 30 x bucket_size, at most 1e9, DeepSpeed's default)


@dataclass
class TrainerConfig:
    backend: str = "torch"  # registered learner backend: torch (one process, plain PyTorch AdamW) | deepspeed
    total_steps: int = 100  # rollout batches (training steps) to run
    prompts_per_step: int = 8  # prompts per rollout batch (x group_size completions)
    micro_batch_size: int = 8  # completions per forward/backward (gradient accumulation below that)
    optimizer_steps_per_batch: int = 1  # mini-batches per rollout batch per iteration
    seed: int = 0
    save_every: int = 0  # checkpoint every N steps (0 = only at the end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    sample_every: int = 10  # write sample rollouts (failed ones included) every N steps
    samples_per_dump: int = 16  # rollouts written per sample dump
    threads: int = 0  # torch CPU threads (0 = leave torch's default)
    gradient_checkpointing: bool = False  # recompute each layer's activations in the backward pass (less memory,
    #   about a third more compute): the policy update, SFT, the reward model and DPO
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)  # options of the deepspeed backend


@dataclass
class RewardSource:
    name: str = "verifier"  # kind verifier: `verifier` = each row's own verifier, else a registered verifier;
    #                         kind model: the source's label in metrics
    weight: float = 1.0  # the reward is the weighted sum over sources
    options: dict[str, Any] = field(default_factory=dict)  # verifier options (e.g. pattern=... for format)
    kind: str = "verifier"  # registered source kind: verifier | model (a reward model at `path`) | rule | judge
    path: Optional[str] = None  # kind model: the reward-model directory
    check: Optional[str] = None  # kinds verifier and rule: the registered verifier / rule to run (null = name),
    #                              so a rubric dimension's label (name) can differ from its check


@dataclass
class TruthConfig:
    """The run's ground truth: one reward source (a rubric dimension) whose held-out mean the summary reports."""

    source: Optional[str] = None  # the label of a reward source / rubric dimension (usually weight 0: measured,
    #   not rewarded); when no source has this label, a verifier of this name is added at weight 0; null = none
    name: str = "truth"  # summary.json reports its held-out mean as <name>_before / <name>_after (the built-in
    #   preference task: true_preference), rlvr-dpo its greedy held-out mean, rlvr-coevolve reads them


@dataclass
class RewardConfig:
    sources: list[RewardSource] = field(default_factory=lambda: [RewardSource()])
    mix: str = "sum"  # sum: weighted sum of the sources | gated: verifiers decide the reward level, reward
    #                   models only order answers within a level (they can never flip a verdict)
    gate_scale: float = 0.25  # gated: the learned term's range, +-gate_scale (capped below half the gap
    #                           between the checks' reward levels in the batch)
    workers: int = 2  # verifier worker processes
    timeout: float = 10.0  # hard per-sample deadline in seconds (a hung check scores 0, reason `timeout`)
    truth: TruthConfig = field(default_factory=TruthConfig)  # the source the summary reports as the run's truth


@dataclass
class LoggerConfig:
    console_every: int = 1  # progress line every N steps
    tensorboard: bool = False  # also write TensorBoard events to <run_dir>/tensorboard
    wandb: bool = False  # also log to Weights & Biases (offline mode) under <run_dir>/wandb
    wandb_project: str = "rlvr"


@dataclass
class TrainConfig:
    run_name: str = "${now:%Y%m%d-%H%M%S}"  # run directory is runs/<run_name> (set it to resume a run)
    resume: str = "never"  # never | auto (continue from the newest checkpoint in the run directory) | a checkpoint path
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)  # the reward-hacking watch (rlvr/eval/config.py)
    rubric: RubricConfig = field(default_factory=RubricConfig)  # rubric=NAME: dimensions that become reward.sources


class ConfigError(UserError, ValueError):
    """An inconsistent configuration; the message says how to fix it."""


def check_verifier(where: str, name: str, options: dict[str, Any]) -> None:
    """The verifier exists and accepts these options (its typed Options dataclass)."""
    from verifiers.base import OptionsError, build_options
    from verifiers.registry import UnknownVerifierError, get_factory

    try:
        factory = get_factory(name)
        options_cls = getattr(factory, "Options", None)
        if options_cls is not None:
            build_options(options_cls, options, name)
    except (UnknownVerifierError, OptionsError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _builtin_only(source: str, value: Any) -> Any:
    """``${builtin_only:${data.source},V}``: V for the built-in tasks, 0 for the user's own file (the tiny
    model's warm-up is for the built-in tasks; on a file it runs only when model.sft.steps is set)."""
    return 0 if source == "file" else value


def register_schemas() -> None:
    """Put the schema into Hydra's ConfigStore (conf/config.yaml lists it first), and the resolver the
    presets use."""
    from omegaconf import OmegaConf

    ConfigStore.instance().store(name="rlvr_schema", node=TrainConfig)
    if not OmegaConf.has_resolver("builtin_only"):
        OmegaConf.register_new_resolver("builtin_only", _builtin_only)
