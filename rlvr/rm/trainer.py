"""The reward-model training loop: shuffled batches of pairs -> Bradley-Terry loss -> backend step.

Step ``s`` (1-based) of epoch ``e`` takes pairs ``[(s-1) % S * B, ...)`` of epoch ``e``'s
order (seeded by ``trainer.seed`` and ``e``), so a resumed run sees the same batches as
an uninterrupted one. With ``trainer.group_by_prompt`` the order is a permutation of
the *prompts*, each followed by all its pairs, so a ranking's pairs share a batch and
each of its answers is scored once for all of them (InstructGPT's recipe: K answers
give K(K-1)/2 pairs for K forward passes); otherwise a permutation of the pairs. Every step logs the batch's loss and `pair_metrics`
(``train/*``); evaluation (before training, every ``trainer.eval_every`` steps, at the
end) scores every eval set (``eval/<name>/*``) and a fixed sample of the training pairs
(``eval/train/*``).

Across ranks (``trainer.backend=deepspeed`` under torchrun) each rank takes its contiguous share of
every batch (`rlvr.distributed.padded_share`: equal lengths; a short last batch repeats a pair with
weight 0, so every rank makes the same passes) and divides its summed loss by ``batch / world_size``:
the backend averages gradients over ranks, so the update is the one-process update over the whole
batch. Metrics are computed on every rank's pairs joined in order, and evaluation scores each set in
shares the same way: the figures are the one-process run's.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import torch

from rlvr.distributed import gather_cat, map_in_shares, padded_share
from rlvr.rm.config import RMConfig
from rlvr.rm.encode import EncodedPairs
from rlvr.rm.loss import bradley_terry_loss
from rlvr.rm.metrics import pair_metrics

__all__ = ["RMTrainer", "TRAIN"]

TRAIN = "train"
Scorer = Callable[[str, list[int]], tuple[torch.Tensor, torch.Tensor]]


class RMTrainer:
    def __init__(self, cfg: RMConfig, backend: Any, scorer: Scorer, sets: dict[str, EncodedPairs], total_steps: int):
        self.cfg, self.backend, self.scorer, self.sets = cfg, backend, scorer, sets
        self.total_steps = total_steps
        self.steps_per_epoch = max(1, math.ceil(len(sets[TRAIN]) / cfg.trainer.batch_size))
        g = torch.Generator().manual_seed(cfg.trainer.seed + 7919)
        sample = torch.randperm(len(sets[TRAIN]), generator=g)[:cfg.trainer.train_eval_pairs]
        self.train_sample = sorted(sample.tolist())
        self._order: tuple[int, list[int]] = (-1, [])

    def batch_indices(self, step: int) -> list[int]:
        """The training pairs of step ``step`` (1-based): a slice of its epoch's seeded permutation."""
        epoch, within = divmod(step - 1, self.steps_per_epoch)
        if self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.cfg.trainer.seed * 1_000_003 + epoch)
            if self.cfg.trainer.group_by_prompt:
                groups = self.sets[TRAIN].groups
                order = [i for k in torch.randperm(len(groups), generator=g).tolist() for i in groups[k]]
            else:
                order = torch.randperm(len(self.sets[TRAIN]), generator=g).tolist()
            self._order = (epoch, order)
        b = self.cfg.trainer.batch_size
        return self._order[1][within * b:(within + 1) * b]

    def _pair_loss(self, name: str, idx: list[int], r_c: torch.Tensor, r_r: torch.Tensor) -> torch.Tensor:
        margin = self.sets[name].margins[idx].to(r_c.device) * self.cfg.loss.margin_scale
        return bradley_terry_loss(r_c, r_r, margin, self.cfg.loss.center_coef)

    def train_step(self, step: int) -> dict[str, Any]:
        start = time.perf_counter()
        idx = self.batch_indices(step)
        mine, real = padded_share(idx, self.backend.rank, self.backend.world_size)
        weights = torch.tensor([1.0] * real + [0.0] * (len(mine) - real))
        normalizer = len(idx) / self.backend.world_size  # the backend averages gradients over ranks
        micro = self.cfg.trainer.micro_batch_size
        self.backend.module.train()
        chosen, rejected, losses = [], [], []
        for lo in range(0, len(mine), micro):
            part = mine[lo:lo + micro]
            r_c, r_r = self.scorer(TRAIN, part)
            loss = self._pair_loss(TRAIN, part, r_c, r_r)
            self.backend.backward((loss * weights[lo:lo + micro].to(loss.device)).sum() / normalizer)
            chosen.append(r_c.detach().cpu())
            rejected.append(r_r.detach().cpu())
            losses.append(loss.detach().cpu())
        grad_norm = self.backend.step()
        r_c, r_r, loss = gather_cat(*(torch.cat(x)[:real] for x in (chosen, rejected, losses)))
        enc = self.sets[TRAIN]
        metrics = pair_metrics(r_c, r_r, enc.chosen_chars[idx], enc.rejected_chars[idx])
        row = {"step": step, "epoch": (step - 1) // self.steps_per_epoch + 1, "train/loss": float(loss.mean())}
        row.update({f"train/{k}": v for k, v in metrics.items()})
        row.update({"train/grad_norm": grad_norm, "train/lr": self.backend.lr, "train/pairs": len(idx),
                    "time/step": time.perf_counter() - start})
        return row

    @torch.no_grad()
    def score_set(self, name: str, indices: Optional[list[int]] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards of the chosen and rejected answers of set ``name`` (all pairs, or ``indices``); across ranks
        each scores a share (collective: call it on every rank)."""
        idx = list(range(len(self.sets[name]))) if indices is None else indices
        size = self.cfg.trainer.eval_batch_size
        self.backend.module.eval()

        def score(part: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            parts = [self.scorer(name, part[lo:lo + size]) for lo in range(0, len(part), size)]
            if not parts:
                return torch.zeros(0), torch.zeros(0)
            return torch.cat([c.cpu() for c, _ in parts]), torch.cat([r.cpu() for _, r in parts])

        r_c, r_r = map_in_shares(score, idx)
        return r_c, r_r

    def evaluate_set(self, name: str, indices: Optional[list[int]] = None) -> dict[str, float]:
        idx = list(range(len(self.sets[name]))) if indices is None else indices
        r_c, r_r = self.score_set(name, idx)
        enc = self.sets[name]
        out = pair_metrics(r_c, r_r, enc.chosen_chars[idx], enc.rejected_chars[idx])
        out["loss"] = float(self._pair_loss(name, idx, r_c, r_r).mean()) if idx else float("nan")
        return out

    def evaluate(self, step: int) -> dict[str, Any]:
        row: dict[str, Any] = {"step": step}
        for name in self.sets:
            indices = self.train_sample if name == TRAIN else None
            row.update({f"eval/{name}/{k}": v for k, v in self.evaluate_set(name, indices).items()})
        return row
