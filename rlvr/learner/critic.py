"""PPO's critic: a value model or a value head on the policy, with its own optimizer, trained on GAE returns.

``algorithm.critic.shared`` chooses where the values come from:

- ``false``: a separate value model: a causal-LM backbone with a one-output linear head (transformers'
  sequence-classification model, read at every token instead of pooled). ``algorithm.critic.path``
  names its start (null: the policy's start weights with a fresh head, seeded by ``trainer.seed``; a
  reward model's directory, such as an ``rlvr-rm`` output, keeps its trained head). It reads the
  policy's token ids, so its vocabulary must be the policy's (another is refused); its width and
  depth are free. The critic trains all of it.
- ``true``: a value head on the policy's own trunk (no second model): a linear head, fresh or copied
  from ``critic.path``'s reward-model head, which must then have the policy's width (another is
  refused). The trunk runs without gradients for the critic, so the value loss trains the head alone
  and never moves the policy (the critic's warm-up keeps the policy still either way).

Values are read exactly where the policy's log-probs are: the model sees every token but the last,
and the hidden state before completion token t gives V_t (`rlvr.algo.gae`). The critic trains in
plain PyTorch (AdamW at ``algorithm.critic.lr``, constant) in this process, with the policy's mini-
and micro-batching; what it trains (the value model, or the head) and its optimizer state are saved
in each checkpoint's ``critic/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.algo.gae import clipped_value_loss
from rlvr.config import AlgorithmConfig, ConfigError, TrainerConfig
from rlvr.errors import ModelError
from rlvr.rollout.base import RolloutBatch

__all__ = ["Critic", "build_critic", "CRITIC_DIR"]

CRITIC_DIR = "critic"  # inside a checkpoint: the critic's weights and optimizer state
_STATE = "critic.pt"


def _vocab(config: Any) -> Optional[int]:
    text = getattr(config, "text_config", None)
    return getattr(config, "vocab_size", None) or getattr(text, "vocab_size", None)


def _width(config: Any) -> Optional[int]:
    text = getattr(config, "text_config", None)
    return getattr(config, "hidden_size", None) or getattr(text, "hidden_size", None)


def _trunk(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer body of a causal LM or classifier (under a PEFT wrapper: the adapted one)."""
    plain = model.get_base_model() if hasattr(model, "peft_config") and hasattr(model, "get_base_model") else model
    return getattr(plain, plain.base_model_prefix)


def _value_model(path: Path, tokenizer: Any, seed: int) -> torch.nn.Module:
    """``path`` as a one-output sequence-classification model (its own head when it has one, else fresh from
    ``seed``)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"algorithm.critic.path={path}: not a model directory ({str(exc).splitlines()[0][:120]}); "
                         f"name a causal LM or reward model directory, or set algorithm.critic.path=null (a fresh "
                         f"value head)") from None
    config.num_labels, config.pad_token_id = 1, tokenizer.pad_token_id
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: score.weight" is the point
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return AutoModelForSequenceClassification.from_pretrained(str(path), config=config, dtype=torch.float32)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"algorithm.critic.path={path}: cannot be a value model ({str(exc).splitlines()[0][:160]}); "
                         f"use a decoder-only causal LM or reward model") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _shape_error(path: Path, what: str, got: Any, want: Any, fix: str) -> ConfigError:
    return ConfigError(f"algorithm.critic.path={path}: the value model's {what} is {got} but the policy's is {want}; "
                       f"{fix}")


def build_critic(algo: AlgorithmConfig, trainer: TrainerConfig, start: Path, policy: torch.nn.Module,
                 tokenizer: Any, device: torch.device) -> "Critic":
    """The critic ``algorithm.critic`` asks for: a separate value model from ``critic.path`` (or ``start``), checked
    against the policy's vocabulary, or a value head on the policy's trunk (from ``critic.path``'s head, checked
    against the policy's width)."""
    c, policy_config = algo.critic, getattr(policy, "config", None)
    path = Path(c.path).expanduser() if c.path else None
    if not c.shared:
        model = _value_model(path or Path(start), tokenizer, trainer.seed)
        want, got = _vocab(policy_config), _vocab(model.config)
        if path is not None and want is not None and got != want:
            raise _shape_error(path, "vocabulary", f"{got} entries", want,
                               "the critic reads the policy's token ids, so it must share its tokenizer; set "
                               "algorithm.critic.path=null (start from the policy's weights) or use a reward model "
                               "trained from the policy's base (rlvr-rm model.path=...)")
        model = model.to(device)
        return Critic(_trunk(model), model.score, model, algo, trainer, detach_trunk=False)
    width = _width(policy_config)
    with torch.random.fork_rng():
        torch.manual_seed(trainer.seed)
        head = torch.nn.Linear(int(width), 1, bias=False)
    if path is not None:
        source = _value_model(path, tokenizer, trainer.seed).score.weight
        if source.shape[-1] != width:
            raise _shape_error(path, "hidden size", source.shape[-1], width,
                               "a value head on the policy reads the policy's hidden states, so its reward model "
                               "must have the policy's width; use a reward model trained from the policy's base, or "
                               "algorithm.critic.shared=false (a separate value model of any width)")
        with torch.no_grad():
            head.weight.copy_(source.reshape(1, -1))
    head = head.to(device)
    return Critic(_trunk(policy), head, head, algo, trainer, detach_trunk=True)


class Critic:
    """Per-token values of rollouts, and their regression on returns (the clipped value loss).

    ``trunk`` gives hidden states, ``head`` maps them to values, ``trainable`` is what the critic's optimizer
    steps and its checkpoint holds: the whole value model (separate), or the head alone on the policy's trunk
    (``detach_trunk``: the trunk runs without gradients, so the value loss never moves the policy)."""

    def __init__(self, trunk: torch.nn.Module, head: torch.nn.Module, trainable: torch.nn.Module,
                 algo: AlgorithmConfig, trainer: TrainerConfig, detach_trunk: bool):
        self.trunk, self.head, self.trainable, self.detach_trunk = trunk, head, trainable, detach_trunk
        self.algo, self.trainer = algo, trainer
        optim = trainer.optim
        self.optimizer = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=algo.critic.lr,
                                           betas=tuple(optim.betas), weight_decay=optim.weight_decay)
        self.device = next(head.parameters()).device

    def _forward(self, part: RolloutBatch) -> torch.Tensor:
        """[n, w] values of a (trimmed) micro-batch's completion positions, with gradients."""
        batch = part.to(self.device)
        ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)[:, :-1]
        mask = batch.attention_mask[:, :-1]  # inserted (tool) tokens are context too
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detach_trunk):
            hidden = self.trunk(input_ids=ids, attention_mask=mask, position_ids=positions,
                                use_cache=False).last_hidden_state
        width = batch.completion_ids.shape[1]
        return self.head(hidden[:, -width:].float()).squeeze(-1).float()

    def values(self, batch: RolloutBatch) -> torch.Tensor:
        """No-grad values [N, C] of a batch (0 on padding), micro-batched."""
        micro, out = self.trainer.micro_batch_size, torch.zeros(batch.completion_ids.shape)
        self.trainable.eval()
        with torch.no_grad():
            for i in range(0, len(batch), micro):
                part = batch.select(torch.arange(i, min(i + micro, len(batch)))).trimmed()
                v = self._forward(part)
                out[i:i + len(part), :v.shape[1]] = v.cpu() * part.completion_mask
        return out

    def update(self, batch: RolloutBatch, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               seed: int) -> dict[str, float]:
        """The critic's optimizer steps for one rollout batch (the policy's mini-batches and iterations):
        ``ppo/value_loss`` (token mean), ``ppo/value_clip_frac``, ``ppo/critic_grad_norm``."""
        self.trainable.train()
        n, steps = len(batch), self.trainer.optimizer_steps_per_batch
        mini, micro = max(1, n // steps), self.trainer.micro_batch_size
        gen = torch.Generator().manual_seed(seed * 7919 + 1)
        sums = {"loss": 0.0, "clipped": 0.0, "tokens": 0.0, "grad_norm": 0.0, "steps": 0.0}
        max_norm = self.trainer.optim.max_grad_norm if self.trainer.optim.max_grad_norm > 0 else float("inf")
        for _ in range(self.algo.num_iterations):
            order = torch.randperm(n, generator=gen) if steps > 1 else torch.arange(n)
            for start in range(0, n, mini):
                index = order[start:start + mini]
                tokens = max(float(mask[index].sum()), 1.0)
                for m in range(0, len(index), micro):
                    idx = index[m:m + micro]
                    part = batch.select(idx).trimmed()
                    width = part.completion_ids.shape[1]
                    keep = mask[idx][:, :width].to(self.device)
                    values = self._forward(part)
                    out = clipped_value_loss(values, old_values[idx][:, :width].to(self.device),
                                             returns[idx][:, :width].to(self.device), self.algo.critic.value_clip)
                    loss = (out.loss * keep).sum() / tokens
                    loss.backward()
                    sums["loss"] += float(loss.detach()) * tokens
                    sums["clipped"] += float((out.clipped.float() * keep).sum())
                    sums["tokens"] += float(keep.sum())
                params = [p for p in self.trainable.parameters() if p.grad is not None]
                sums["grad_norm"] += float(torch.nn.utils.clip_grad_norm_(params, max_norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                sums["steps"] += 1
        tokens = max(sums["tokens"], 1.0)
        return {"ppo/value_loss": sums["loss"] / tokens, "ppo/value_clip_frac": sums["clipped"] / tokens,
                "ppo/critic_grad_norm": sums["grad_norm"] / max(sums["steps"], 1.0)}

    def save(self, directory: Path) -> None:
        """Weights and optimizer state (exact, for resuming) in ``directory``."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.trainable.state_dict(), "optimizer": self.optimizer.state_dict()},
                   Path(directory) / _STATE)

    def load(self, directory: Path) -> None:
        state = torch.load(Path(directory) / _STATE, weights_only=False, map_location=self.device)
        self.trainable.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
