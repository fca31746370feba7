"""Reward-model sources: one score per completion from a sequence-classification model directory.

The directory is anything ``AutoModelForSequenceClassification.from_pretrained`` loads, plus
its tokenizer: a model `rlvr-rm` wrote, or a third-party reward model. How it is read depends
on the model, never on a flag:

- **Causal-LM classifiers** (the ``score`` head transformers gives Llama, Qwen2, Mistral, ...
  ``*ForSequenceClassification``) run their backbone and head, and the score is read at the
  last *real* token, found from the attention mask, so neither the amount of padding nor
  ``pad == eos`` changes it (the models' own pooling looks for the first pad token, which is
  the wrong place when ``pad == eos``).
- **Encoder classifiers** (BERT, RoBERTa, DeBERTa, ...: a ``classifier`` head that pools
  the sequence itself) run their own ``forward`` and the score is read from ``.logits``.

The input is built with the reward model's *own* tokenizer: the completion as the assistant
turn after its prompt, through that tokenizer's chat template when it has one. Without a
template a causal-LM classifier reads the plain ``"\\n\\n"`` join, as `rlvr-rm` trains it,
and an encoder reads (prompt, completion) as a text pair (``[CLS] prompt [SEP] completion
[SEP]``), the interface encoder reward models such as OpenAssistant's DeBERTa ones were
trained with. Encoders get their special tokens added by the tokenizer; a causal model's
come from its template.

Options (``reward.sources[i].options``):

    batch_size         16     completions per forward
    max_tokens         1024   longer inputs keep their end (the answer); also capped by the
                              tokenizer's model_max_length and an encoder's position table
    output             null   which output of a multi-output head: an index, or a name from
                              config.id2label (e.g. helpfulness); required when there are several
    dtype              null   the weights' precision: bf16 | fp16 | fp32 | auto (what the
                              checkpoint's config says); null follows the policy's model.dtype.
                              fp16 on a CPU is refused (use bf16 or fp32)
    trust_remote_code  false  run the directory's own Python code (a line says so when on); a
                              model that needs it while off is a ConfigError naming this option
    normalize          auto   auto: the statistics saved beside the model (``reward_stats.json``,
                              written by rlvr-rm) when present, else running statistics over
                              the first ``running_count`` scores, then frozen; true: the file is
                              required; false: raw scores
    running_count      256    scores the running statistics are estimated over
    clip               5.0    normalized scores are clipped to +-clip standard deviations (0 = none)

Running statistics are per process (each rank estimates its own), count every score the
source gives (held-out evaluation included) and are not saved with checkpoints: a resumed
run estimates them again. The start-up line of each source states its path (encoder or
causal), output, precision, input format and normalization. A model source never decides
`passed`; the raw scores are kept for the metrics (``reward/<label>/raw_mean``) and the
hacking watch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from rlvr.config import ConfigError
from rlvr.config import RewardSource as SourceConfig
from rlvr.data.chat import chat_texts
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores
from rlvr.rewards.mix import normalize_scores
from rlvr.rewards.model_checkpoint import (DTYPES, choose_output, frozen_dtype, head_labels, needs_remote_code,
                                           read_model_config, refuse_fp16_on_cpu)
from rlvr.rewards.score_stats import RunningScoreStats

__all__ = ["RewardModelSource", "check_model_source", "model_options", "last_token_scores", "render_pair",
           "prompt_text", "reads_last_token", "load_reward_stats", "STATS_FILE"]

_OPTIONS: dict[str, Any] = {"batch_size": 16, "max_tokens": 1024, "output": None, "dtype": None,
                            "trust_remote_code": False, "normalize": "auto", "running_count": 256, "clip": 5.0}
_CHOICES = {"normalize": (True, False, "auto"), "dtype": (None, "auto", *DTYPES),
            "trust_remote_code": (True, False)}
STATS_FILE = "reward_stats.json"  # written by rlvr-rm beside the model: mean, std, min, max, quantiles, count


def model_options(where: str, options: dict[str, Any]) -> dict[str, Any]:
    """The source's options over their defaults; unknown names and values out of range are ConfigErrors."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(_OPTIONS)}")
    opts = {**_OPTIONS, **options}
    for key, allowed in _CHOICES.items():
        if not any(opts[key] is a or (isinstance(a, str) and opts[key] == a) for a in allowed):
            raise ConfigError(f"{where}: options.{key}={opts[key]!r}; choose one of "
                              f"{', '.join('null' if a is None else str(a).lower() for a in allowed)}")
    for key, least in (("batch_size", 1), ("max_tokens", 1), ("running_count", 2), ("clip", 0)):
        if isinstance(opts[key], bool) or not isinstance(opts[key], (int, float)) or opts[key] < least:
            raise ConfigError(f"{where}: options.{key}={opts[key]!r}; use a number >= {least}")
    return opts


def load_reward_stats(path: str | Path) -> Optional[dict[str, Any]]:
    """The statistics saved with a reward model, or None when the directory has none."""
    file = Path(path) / STATS_FILE
    if not file.is_file():
        return None
    stats = json.loads(file.read_text())
    for key in ("mean", "std"):
        if not isinstance(stats.get(key), (int, float)):
            raise ValueError(f"{file}: {key!r} is missing or not a number; retrain with rlvr-rm, or set "
                             f"options.normalize=auto (running statistics) or false on this reward source")
    return stats


def render_pair(tokenizer: Any, prompt: Prompt, completion: str) -> str:
    """The prompt's messages followed by the completion as the assistant's turn."""
    messages = [dict(m) for m in prompt.messages] + [{"role": "assistant", "content": completion}]
    if getattr(tokenizer, "chat_template", None):
        return chat_texts(tokenizer, [messages], False, [prompt.uid])[0]
    return "\n\n".join(m["content"] for m in messages)


def prompt_text(prompt: Prompt) -> str:
    """The prompt's messages joined with blank lines: the first text of an encoder's text pair."""
    return "\n\n".join(m["content"] for m in prompt.messages)


def last_token_scores(per_token: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] scores -> [B]: the score at each row's last position whose mask is 1 (any padding side)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask.long()).argmax(-1)
    return per_token.gather(1, last.unsqueeze(1)).squeeze(1)


def reads_last_token(model: Any) -> bool:
    """A causal-LM classifier: a ``score`` head over the backbone of a model type transformers also builds as
    a causal LM. Everything else (encoders' ``classifier`` heads, remote code) goes through its own forward."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return (isinstance(getattr(model, "score", None), torch.nn.Module)
            and hasattr(model, model.base_model_prefix)
            and model.config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and not model.config.is_encoder_decoder)


def _remote_code_error(where: str, path: str) -> ConfigError:
    return ConfigError(f"{where}: {path} needs its own Python code (config.json's auto_map) to load; set "
                       f"options.trust_remote_code=true if you trust that code")


def check_model_source(where: str, src: SourceConfig) -> None:
    """`reward.sources[i]` of kind model, before anything expensive starts (the warm-up, model loads): its
    options, that ``path`` is a model directory, its output choice, remote code, fp16 on a CPU-only machine
    (the learner's device is checked again at load) and the statistics ``normalize: true`` needs."""
    opts = model_options(where, src.options)
    if not src.path:
        raise ConfigError(f"{where}: set its path to a reward-model directory (rlvr-rm ... run_name=NAME writes "
                          f"runs/NAME/model)")
    path = Path(os.path.expanduser(src.path))
    if not (path / "config.json").is_file():
        problem = "has no config.json" if path.is_dir() else "does not exist"
        raise ConfigError(f"{where}: reward-model directory {src.path} {problem}; train one first (rlvr-rm ... "
                          f"run_name=NAME writes runs/NAME/model) or fix the path")
    config = read_model_config(path)
    if needs_remote_code(config) and not opts["trust_remote_code"]:
        raise _remote_code_error(where, src.path)
    labels = head_labels(config)
    if labels is not None:
        choose_output(where, labels, opts["output"])
    refuse_fp16_on_cpu(where, *frozen_dtype(opts["dtype"], "fp32", config),
                       "cuda" if torch.cuda.is_available() else "cpu")
    if opts["normalize"] is True and not (path / STATS_FILE).is_file():
        raise ConfigError(f"{where}: {src.path} has no {STATS_FILE} (the score statistics rlvr-rm saves); train it "
                          f"with rlvr-rm, or set options.normalize=auto (running statistics) or false (raw scores)")


class RewardModelSource:
    decides_pass = False
    learned = True

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        where = f"reward source {label!r}"
        self.options = opts = model_options(where, cfg.options)
        if not cfg.path or not os.path.isdir(os.path.expanduser(cfg.path)):
            raise ConfigError(f"{where} (kind model) needs path: a reward-model directory; got {cfg.path!r}")
        path = os.path.expanduser(cfg.path)
        self.label, self.weight, self.device = label, cfg.weight, ctx.device
        config, trust = read_model_config(path), bool(opts["trust_remote_code"])
        if needs_remote_code(config) and not trust:
            raise _remote_code_error(where, path)
        if trust:
            print(f"{where}: trust_remote_code is on: Python code from {path} runs in this process", flush=True)
        dtype, why = frozen_dtype(opts["dtype"], ctx.dtype, config)
        refuse_fp16_on_cpu(where, dtype, why, self.device.type)
        self.model, self.tokenizer = _load(where, path, dtype, trust)
        labels = [str(self.model.config.id2label.get(i, f"LABEL_{i}")) for i in range(self.model.config.num_labels)]
        self.output = choose_output(where, labels, opts["output"])
        self.last_token = reads_last_token(self.model)
        self.model.to(self.device).eval().requires_grad_(False)
        self.input_kind = ("chat template" if getattr(self.tokenizer, "chat_template", None) else
                           "plain join" if self.last_token else "text pair (prompt, completion)")
        if self.tokenizer.pad_token is None:  # scores are read from the attention mask, so eos pads safely
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stats = load_reward_stats(path) if opts["normalize"] is not False else None
        if opts["normalize"] is True and self.stats is None:
            raise ConfigError(f"{where}: {path} has no {STATS_FILE} (the score statistics rlvr-rm saves); train the "
                              f"model with rlvr-rm, or set reward.sources[].options.normalize=auto (running "
                              f"statistics) or false (raw scores)")
        self.running = (RunningScoreStats(int(opts["running_count"]))
                        if opts["normalize"] == "auto" and self.stats is None else None)
        print(f"{where}: {path}: {self._describe(labels, dtype, why)}", flush=True)

    def _describe(self, labels: list[str], dtype: str, why: str) -> str:
        kind = ("causal-LM classifier, read at the last real token" if self.last_token else
                "classifier through its own forward (.logits)")
        if self.running is not None:
            norm = (f"running statistics over the first {self.running.limit} scores, then frozen "
                    f"(no {STATS_FILE})")
        else:
            norm = f"the saved {STATS_FILE}" if self.stats is not None else "off (raw scores)"
        clip = float(self.options["clip"])
        return (f"{self.model.config.model_type} {kind}; output {self.output} ({labels[self.output]}) of "
                f"{len(labels)}; {dtype} ({why}); input: {self.input_kind} with its own tokenizer; normalize: "
                f"{norm}{f', clipped at +-{clip:g} std' if norm != 'off (raw scores)' and clip > 0 else ''}")

    def _max_length(self) -> int:
        limit = int(self.options["max_tokens"])
        if self.tokenizer.model_max_length < 10 ** 6:  # unset is a huge sentinel
            limit = min(limit, int(self.tokenizer.model_max_length))
        positions = getattr(self.model.config, "max_position_embeddings", None)
        return min(limit, positions) if not self.last_token and isinstance(positions, int) else limit

    def _encode(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> dict[str, torch.Tensor]:
        self.tokenizer.truncation_side, self.tokenizer.padding_side = "left", "right"  # positions start at 0
        if self.input_kind.startswith("text pair"):
            texts: tuple[list[str], ...] = ([prompt_text(p) for p in prompts], list(completions))
        else:
            texts = ([render_pair(self.tokenizer, p, c) for p, c in zip(prompts, completions)],)
        enc = self.tokenizer(*texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self._max_length(), add_special_tokens=not self.last_token)
        return {k: v.to(self.device) for k, v in enc.items()}

    def _raw_scores(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> torch.Tensor:
        enc = self._encode(prompts, completions)
        if self.last_token:
            backbone = getattr(self.model, self.model.base_model_prefix)
            hidden = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            per_token = self.model.score(hidden)[..., self.output].float()
            return last_token_scores(per_token, enc["attention_mask"]).cpu()
        out = self.model(**enc)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits.reshape(len(completions), -1)[:, self.output].float().cpu()

    def _normalize(self, raw: torch.Tensor) -> torch.Tensor:
        if self.running is not None:
            if self.running.update(raw):
                print(f"reward source {self.label!r}: running statistics frozen after {self.running.count} scores: "
                      f"mean {self.running.mean:.4g}, std {self.running.std:.4g}", flush=True)
            mean, std = self.running.mean, self.running.std
        elif self.stats is not None:
            mean, std = float(self.stats["mean"]), float(self.stats["std"])
        else:
            return raw
        return normalize_scores(raw, mean, std, float(self.options["clip"]))

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        size = int(self.options["batch_size"])
        chunks = [self._raw_scores(prompts[i:i + size], completions[i:i + size])
                  for i in range(0, len(completions), size)]
        raw = torch.cat(chunks) if chunks else torch.zeros(0)
        return SourceScores(self._normalize(raw), ["scored"] * len(completions), None, raw=raw)

    def close(self) -> None:
        pass


def _load(where: str, path: str, dtype: str, trust: bool) -> tuple[Any, Any]:
    """(model, tokenizer) from `path`; a directory whose head is missing (a plain language model) or whose
    code transformers will not run is a ConfigError naming the fix."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=DTYPES[dtype], output_loading_info=True, trust_remote_code=trust)
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not trust:
            raise _remote_code_error(where, path) from None
        raise
    prefix = f"{model.base_model_prefix}."
    head = sorted(k for k in info.get("missing_keys", []) if not k.startswith(prefix))
    if head:
        raise ConfigError(f"{where}: {path} has no reward head ({', '.join(head)} missing: it is a plain language "
                          f"model); train a reward model from it with rlvr-rm")
    return model, tokenizer
