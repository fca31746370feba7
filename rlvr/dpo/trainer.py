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
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from rlvr.data.sources import PromptStream
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
        loss_sum, chosen, rejected, logratio, nll = 0.0, [], [], [], []
        for start in range(0, len(batch), self.micro):
            terms, ratio, chosen_nll = self._terms(batch[start:start + self.micro])
            loss = terms.loss.sum() / len(batch)
            self.backend.backward(loss)
            loss_sum += loss.item()
            chosen.append(terms.chosen_rewards.cpu())
            rejected.append(terms.rejected_rewards.cpu())
            logratio.append(ratio.cpu())
            nll.append(chosen_nll.cpu())
        grad_norm = self.backend.step()
        metrics = {f"dpo/{k}": v for k, v in pair_metrics(torch.cat(chosen), torch.cat(rejected)).items()}
        metrics.update({"dpo/loss": loss_sum, "dpo/logratio_chosen": torch.cat(logratio).mean().item(),
                        "dpo/chosen_nll": torch.cat(nll).mean().item(), "dpo/grad_norm": grad_norm,
                        "dpo/lr": self.backend.lr})
        return metrics

    @torch.no_grad()
    def evaluate(self, pairs: Sequence[Pair], prefix: str) -> dict[str, float]:
        """Mean loss and implicit-reward metrics of ``pairs`` (no gradient)."""
        if not pairs:
            return {}
        was_training = self.backend.module.training
        self.backend.module.eval()
        losses, chosen, rejected = [], [], []
        try:
            for start in range(0, len(pairs), self.micro):
                terms, _, _ = self._terms(pairs[start:start + self.micro])
                losses.append(terms.loss.float().cpu())
                chosen.append(terms.chosen_rewards.cpu())
                rejected.append(terms.rejected_rewards.cpu())
        finally:
            self.backend.module.train(was_training)
        metrics = pair_metrics(torch.cat(chosen), torch.cat(rejected))
        metrics["loss"] = torch.cat(losses).mean().item()
        return {f"{prefix}/{k}": v for k, v in metrics.items()}
