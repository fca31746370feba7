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
and the hidden state before completion token t gives V_t (`rlvr.algo.gae`). What the critic trains
(the value model, or the head), wrapped with its forward in a `ValueNet`, gets a learner backend of
its own, of the policy's kind (``trainer.backend``; `rlvr.learner.base.Backend`): AdamW at
``algorithm.critic.lr`` (constant), clipping at ``trainer.optim.max_grad_norm``, the policy's mini-
and micro-batching. Under ``trainer.backend=deepspeed`` that is a second DeepSpeed engine with the
policy's ZeRO stage: the critic's gradients are averaged over the ranks and its optimizer state (and
under ZeRO-3 its parameters) sharded like the policy's, so every rank holds the same critic, and each
rank regresses its own rows with the loss normalized by the global token count (as the policy's
loss is). A checkpoint's ``critic/`` holds its complete weights (``weights.pt``, rank 0 writes) and
the backend's resumable state (``backend/``; under DeepSpeed one shard per rank).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.algo.gae import clipped_value_loss
from rlvr.config import AlgorithmConfig, ConfigError, TrainerConfig
from rlvr.distributed import all_reduce_sum, sum_over_ranks
from rlvr.errors import ModelError
from rlvr.learner.base import Backend
from rlvr.rollout.base import RolloutBatch

__all__ = ["Critic", "ValueNet", "build_critic", "critic_trainer", "CRITIC_DIR", "WEIGHTS"]

CRITIC_DIR = "critic"  # inside a checkpoint: the critic's weights and its backend's state
WEIGHTS = "weights.pt"  # inside critic/: the complete state dict of what the critic trains
_BACKEND = "backend"  # inside critic/: the critic's backend state (optimizer; under DeepSpeed also its shards)


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
        net = ValueNet(model.to(device), _trunk(model), model.score, detach_trunk=False, config=model.config)
        return Critic(net, _critic_backend(net, trainer, c.lr), algo, trainer)
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
    net = ValueNet(head.to(device), _trunk(policy), head, detach_trunk=True, config=policy_config)
    return Critic(net, _critic_backend(net, trainer, c.lr), algo, trainer)


def critic_trainer(trainer: TrainerConfig, lr: float) -> TrainerConfig:
    """The trainer block the critic's backend reads: the policy's (backend, micro-batches, betas, weight decay,
    clipping, DeepSpeed settings) with the critic's learning rate, constant from the first step."""
    from dataclasses import replace

    return replace(trainer, optim=replace(trainer.optim, lr=lr, warmup_steps=0, schedule="constant"))


def _critic_backend(net: "ValueNet", trainer: TrainerConfig, lr: float) -> Backend:
    """A backend of the policy's kind around ``net`` (fp32: the critic's weights are fp32 whatever the policy's)."""
    from rlvr.learner import open_backend

    return open_backend(trainer.backend, net, critic_trainer(trainer, lr), 1, dtype="fp32", master_dtype="fp32")


class ValueNet(torch.nn.Module):
    """What the critic's optimizer steps (``trainable``: the value model, or the head alone), with the forward that
    gives per-token values. ``trunk`` and ``head`` are read through it but not registered again: with
    ``detach_trunk`` the trunk is the policy's, run without gradients, and stays the policy backend's."""

    def __init__(self, trainable: torch.nn.Module, trunk: torch.nn.Module, head: torch.nn.Module, detach_trunk: bool,
                 config: Any = None):
        super().__init__()
        self.trainable, self.detach_trunk, self.config = trainable, detach_trunk, config
        self._parts = (trunk, head)  # a tuple: not submodules of this one

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                width: int) -> torch.Tensor:
        """[n, width] values at the last ``width`` positions (the completion's tokens)."""
        trunk, head = self._parts
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.detach_trunk):
            hidden = trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           use_cache=False).last_hidden_state
        return head(hidden[:, -width:].float()).squeeze(-1).float()


class Critic:
    """Per-token values of rollouts, and their regression on returns (the clipped value loss), through a backend
    (`ValueNet` is its module) on every rank: forward, backward, step, save and load are collective under DeepSpeed,
    and every rank makes the same number of each call (equal shares of rows)."""

    def __init__(self, net: ValueNet, backend: Backend, algo: AlgorithmConfig, trainer: TrainerConfig):
        self.net, self.backend, self.algo, self.trainer = net, backend, algo, trainer
        self.device = backend.device

    def _forward(self, part: RolloutBatch) -> torch.Tensor:
        """[n, w] values of a (trimmed) micro-batch's completion positions, with gradients."""
        batch = part.to(self.device)
        ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)[:, :-1]
        mask = batch.attention_mask[:, :-1]  # inserted (tool) tokens are context too
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return self.backend.forward(input_ids=ids, attention_mask=mask, position_ids=positions,
                                    width=batch.completion_ids.shape[1])

    def values(self, batch: RolloutBatch) -> torch.Tensor:
        """No-grad values [N, C] of a batch (0 on padding), micro-batched."""
        micro, out = self.trainer.micro_batch_size, torch.zeros(batch.completion_ids.shape)
        self.backend.module.eval()
        with torch.no_grad():
            for i in range(0, len(batch), micro):
                part = batch.select(torch.arange(i, min(i + micro, len(batch)))).trimmed()
                v = self._forward(part)
                out[i:i + len(part), :v.shape[1]] = v.cpu() * part.completion_mask
        return out

    def update(self, batch: RolloutBatch, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               seed: int) -> dict[str, float]:
        """The critic's optimizer steps for one rollout batch (the policy's mini-batches and iterations):
        ``ppo/value_loss`` (token mean), ``ppo/value_clip_frac``, ``ppo/critic_grad_norm``, over every rank's rows.

        The backend averages gradients over ranks, so each rank divides its token sum by the global token count
        over the world size: the step equals one process's over the union of the ranks' rows."""
        self.backend.module.train()
        n, steps, world = len(batch), self.trainer.optimizer_steps_per_batch, self.backend.world_size
        mini, micro = max(1, n // steps), self.trainer.micro_batch_size
        gen = torch.Generator().manual_seed(seed * 7919 + 1)
        sums = {"loss": 0.0, "clipped": 0.0, "tokens": 0.0}
        norms = []
        for _ in range(self.algo.num_iterations):
            order = torch.randperm(n, generator=gen) if steps > 1 else torch.arange(n)
            for start in range(0, n, mini):
                index = order[start:start + mini]
                tokens = max(all_reduce_sum(float(mask[index].sum())), 1.0) / world
                for m in range(0, len(index), micro):
                    idx = index[m:m + micro]
                    part = batch.select(idx).trimmed()
                    width = part.completion_ids.shape[1]
                    keep = mask[idx][:, :width].to(self.device)
                    values = self._forward(part)
                    out = clipped_value_loss(values, old_values[idx][:, :width].to(self.device),
                                             returns[idx][:, :width].to(self.device), self.algo.critic.value_clip)
                    per_token = out.loss * keep
                    self.backend.backward(per_token.sum() / tokens)
                    sums["loss"] += float(per_token.detach().sum())
                    sums["clipped"] += float((out.clipped.float() * keep).sum())
                    sums["tokens"] += float(keep.sum())
                norms.append(self.backend.step())  # the global pre-clip norm
        loss, clipped, tokens = sum_over_ranks(torch.tensor([sums["loss"], sums["clipped"], sums["tokens"]],
                                                            dtype=torch.float64)).tolist()
        tokens = max(tokens, 1.0)
        return {"ppo/value_loss": loss / tokens, "ppo/value_clip_frac": clipped / tokens,
                "ppo/critic_grad_norm": sum(norms) / max(len(norms), 1)}

    def save(self, directory: Path) -> None:
        """Complete weights (``weights.pt``, rank 0 writes) and the backend's resumable state; collective."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {}
        for name, tensor in self.backend.named_tensors():  # under ZeRO-3 each tensor is gathered: every rank joins
            if self.backend.is_main:
                weights[name.removeprefix("trainable.")] = tensor.detach().cpu().clone()
        if self.backend.is_main:
            torch.save(weights, directory / WEIGHTS)
        self.backend.save(directory / _BACKEND)

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote; collective. A sharded backend (ZeRO-3) restores the weights from its own
        shards; whole weights are loaded from ``weights.pt`` first."""
        directory = Path(directory)
        if not any(hasattr(p, "ds_id") for p in self.net.parameters()):
            self.net.trainable.load_state_dict(torch.load(directory / WEIGHTS, map_location=self.device))
        self.backend.load(directory / _BACKEND)
