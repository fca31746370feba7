"""DPO steps through a learner backend: micro-batched pairs, exact gradient accumulation, pair evaluation.

One step takes ``trainer.batch_size`` pairs from a shuffled stream over the training
pairs (`rlvr.data.PromptStream`: seeded epochs), scores both answers of each
micro-batch under the policy (with gradient) and the reference (`rlvr.dpo.reference`),
adds ``sum(per-pair loss) / batch_size`` to the gradient, and steps the optimizer once.
Metrics (``dpo/*``): the loss, the implicit rewards and their margin and accuracy
(`rlvr.dpo.loss.pair_metrics`), ``dpo/logratio_chosen`` (mean log pi/pi_ref of the
data's chosen answers: how far the policy moved on them; not a KL, which needs the
policy's own samples, see `rlvr.dpo.policy_eval.sampled_kl`), the chosen answers'
per-token NLL, gradient norm and learning rate. `evaluate` reports the same pair
metrics on held-out pairs without gradient.

Across ranks every rank draws the same global batch from the stream and trains on its
contiguous share (``trainer.batch_size`` is a multiple of the world size), dividing its summed
loss by ``batch / world_size``: the backend averages gradients over ranks, so the update is the
one-process update over the whole batch. The metrics are computed on every rank's pairs joined
in order, and `evaluate` scores the pairs in shares (`rlvr.distributed.map_in_shares`).
`state_dict` (the stream's position) goes into every checkpoint.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from rlvr.data.sources import PromptStream
from rlvr.distributed import gather_cat, map_in_shares, share
from rlvr.dpo.config import DPOLossConfig
from rlvr.dpo.loss import dpo_loss, pair_metrics
from rlvr.dpo.pairs import sequence_logprobs
from rlvr.learner.base import Backend
from rlvr.preference import Pair

__all__ = ["DPOTrainer"]


class DPOTrainer:
    def __init__(self, backend: Backend, tokenizer: Any, reference: Any, pairs: Sequence[Pair], loss: DPOLossConfig,
                 batch_size: int, micro_batch_size: int, seed: int, dtype: Optional[torch.dtype] = None):
        self.backend, self.tokenizer, self.reference, self.loss = backend, tokenizer, reference, loss
        self.batch_size, self.micro, self.dtype = batch_size, micro_batch_size, dtype
        self.stream = PromptStream(list(pairs), seed)

    def _terms(self, pairs: Sequence[Pair]):
        out = sequence_logprobs(self.backend.forward, self.tokenizer, pairs, self.dtype, self.backend.device)
        ref_chosen, ref_rejected = (t.to(out.chosen.device) for t in self.reference(pairs))
        nll = -out.chosen / out.chosen_tokens.clamp(min=1)
        terms = dpo_loss(out.chosen, out.rejected, ref_chosen, ref_rejected, self.loss.beta, self.loss.label_smoothing,
                         chosen_nll=nll, sft_coef=self.loss.sft_coef)
        return terms, (out.chosen - ref_chosen).detach(), nll.detach()

    def step(self) -> dict[str, float]:
        """One optimizer step over ``batch_size`` pairs; returns the ``dpo/*`` metrics."""
        self.backend.module.train()
        batch = self.stream.take(self.batch_size)
        world = self.backend.world_size
        mine = [batch[i] for i in share(len(batch), self.backend.rank, world)]
        normalizer = len(batch) / world  # the backend averages gradients over ranks
        losses, chosen, rejected, logratio, nll = [], [], [], [], []
        for start in range(0, len(mine), self.micro):
            terms, ratio, chosen_nll = self._terms(mine[start:start + self.micro])
            self.backend.backward(terms.loss.sum() / normalizer)
            losses.append(terms.loss.detach().float().cpu())
            chosen.append(terms.chosen_rewards.cpu())
            rejected.append(terms.rejected_rewards.cpu())
            logratio.append(ratio.cpu())
            nll.append(chosen_nll.cpu())
        grad_norm = self.backend.step()
        loss, chosen_r, rejected_r, ratio_all, nll_all = gather_cat(
            *(torch.cat(x) for x in (losses, chosen, rejected, logratio, nll)))
        metrics = {f"dpo/{k}": v for k, v in pair_metrics(chosen_r, rejected_r).items()}
        metrics.update({"dpo/loss": loss.sum().item() / len(batch), "dpo/logratio_chosen": ratio_all.mean().item(),
                        "dpo/chosen_nll": nll_all.mean().item(), "dpo/grad_norm": grad_norm,
                        "dpo/lr": self.backend.lr})
        return metrics

    @torch.no_grad()
    def evaluate(self, pairs: Sequence[Pair], prefix: str) -> dict[str, float]:
        """Mean loss and implicit-reward metrics of ``pairs`` (no gradient; across ranks in shares: collective)."""
        if not pairs:
            return {}
        was_training = self.backend.module.training
        self.backend.module.eval()

        def score(part: list[Pair]) -> tuple[torch.Tensor, ...]:
            losses, chosen, rejected = [], [], []
            for start in range(0, len(part), self.micro):
                terms, _, _ = self._terms(part[start:start + self.micro])
                losses.append(terms.loss.float().cpu())
                chosen.append(terms.chosen_rewards.cpu())
                rejected.append(terms.rejected_rewards.cpu())
            return torch.cat(losses), torch.cat(chosen), torch.cat(rejected)

        try:
            losses, chosen, rejected = map_in_shares(score, pairs)
        finally:
            self.backend.module.train(was_training)
        metrics = pair_metrics(chosen, rejected)
        metrics["loss"] = losses.mean().item()
        return {f"{prefix}/{k}": v for k, v in metrics.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.stream.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state["data"])
