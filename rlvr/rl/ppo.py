"""What the RL loop does for PPO (``algorithm=ppo``: ``algorithm.advantage: gae``): the critic's side of a step.

Per rollout batch, before the policy update (`PPOStep.advantages`):

1. the KL to the reference per token, ``kl_t = logp_t - ref_t`` (the sampling policy's log-probs);
2. per-token rewards: the sequence's reward on its last token, and ``-beta * kl_t`` on every token
   when ``algorithm.kl_penalty=reward`` (with ``loss`` the policy loss carries ``beta`` x k3 KL instead);
3. the critic's values of the batch, GAE advantages and returns (`rlvr.algo.gae`), advantages whitened
   over the batch's tokens (``algorithm.whiten_advantages``);
4. the critic's optimizer steps on the returns (clipped value loss);
5. the adaptive KL controller (`rlvr.algo.kl_control`) moves ``algorithm.beta`` towards
   ``algorithm.kl_target`` for the next step (the coefficient this step used is what it logs);
6. during the first ``algorithm.critic.warmup_steps`` steps the policy does not move (the critic learns
   the values of the starting policy first).

With several data-parallel ranks (``trainer.backend=deepspeed`` under torchrun) each rank computes the
GAE of its own rows with the critic every rank shares; what spans the batch is taken over every rank's
rows (`rlvr.distributed.sum_over_ranks`): the whitening statistics, the metrics, and the KL the
controller reads, so every rank whitens with the same mean and variance and moves beta identically,
exactly as one process over the union of the rows would.

Metrics (all under ``ppo/``): value_loss, value_clip_frac, critic_grad_norm, explained_variance,
value_mean, return_mean, advantage_mean / advantage_std (before whitening), kl (per completion, summed
over tokens), kl_target, kl_coef (the beta this step used), policy_frozen (1 during the critic's warm-up).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from rlvr.algo.gae import explained_variance, gae_advantages, masked_mean, token_rewards, whiten
from rlvr.algo.kl_control import adaptive_kl_coef
from rlvr.config import AlgorithmConfig
from rlvr.distributed import sum_over_ranks
from rlvr.learner.critic import CRITIC_DIR, WEIGHTS, Critic
from rlvr.rollout.base import RolloutBatch

__all__ = ["PPOStep", "PPOAdvantages", "describe"]


@dataclass
class PPOAdvantages:
    advantages: torch.Tensor  # [N, C] per-token GAE advantages (whitened when asked)
    metrics: dict[str, float]  # the ppo/* metrics of the step
    move_policy: bool  # False during the critic's warm-up
    loss_beta: float  # the policy loss's k3 KL coefficient (0 when the KL is in the reward)


class PPOStep:
    def __init__(self, critic: Critic, algo: AlgorithmConfig):
        self.critic, self.algo = critic, algo

    def advantages(self, step: int, batch: RolloutBatch, scores: torch.Tensor, mask: torch.Tensor,
                   logprobs: torch.Tensor, ref: Optional[torch.Tensor]) -> PPOAdvantages:
        """Steps 1-6 of the module docstring for one batch (``mask``: the completions' sampled tokens, a prefix of
        each row, with holes at a multi-turn rollout's inserted tool outputs; ``logprobs``: the sampling policy's, [N, C]; ``ref``: the reference's, or None without a KL
        leash). The policy loss applies its own mask (off-policy corrections, truncation) on top."""
        a, mask = self.algo, mask.float()
        coef = a.beta
        kl = (logprobs - ref) * mask if ref is not None else torch.zeros_like(mask)
        rewards = token_rewards(scores.float(), kl, mask, coef if a.kl_penalty == "reward" else 0.0)
        values = self.critic.values(batch) * mask
        adv, returns = gae_advantages(rewards, values, mask, a.gamma, a.lam)
        total = sum_over_ranks  # every rank's rows (the identity on one process)
        adv_mean = masked_mean(adv, mask, total)
        metrics = {"ppo/explained_variance": explained_variance(values, returns, mask, total),
                   "ppo/value_mean": float(masked_mean(values, mask, total)),
                   "ppo/return_mean": float(masked_mean(returns, mask, total)),
                   "ppo/advantage_mean": float(adv_mean),
                   "ppo/advantage_std": float(masked_mean((adv - adv_mean) ** 2, mask, total).sqrt())}
        if a.whiten_advantages:
            adv = whiten(adv, mask, total=total)
        metrics.update(self.critic.update(batch, values, returns, mask, seed=step))
        rows = mask.sum(-1) > 0  # an excluded row has no tokens: it is no evidence of a small KL
        kl_sum, n_rows = total(torch.tensor([float(kl[rows].sum()), float(rows.sum())], dtype=torch.float64)).tolist()
        seq_kl = kl_sum / n_rows if n_rows > 0 else 0.0
        a.beta = adaptive_kl_coef(coef, seq_kl, a.kl_target, int(n_rows), a.kl_horizon)
        move = step > a.critic.warmup_steps
        metrics.update({"ppo/kl": seq_kl, "ppo/kl_target": a.kl_target, "ppo/kl_coef": coef,
                        "ppo/policy_frozen": 0.0 if move else 1.0})
        return PPOAdvantages(adv, metrics, move, coef if a.kl_penalty == "loss" else 0.0)

    def save(self, checkpoint_dir: Path) -> None:
        """The critic into the checkpoint's ``critic/``; collective (every rank joins)."""
        self.critic.save(Path(checkpoint_dir) / CRITIC_DIR)

    def load(self, checkpoint_dir: Path) -> None:
        directory = Path(checkpoint_dir) / CRITIC_DIR
        if not directory.is_dir():
            from rlvr.checkpoint import ResumeError

            raise ResumeError(f"checkpoint {checkpoint_dir} has no {CRITIC_DIR}/ (it is not a PPO run's): resume PPO "
                              f"from a PPO checkpoint, or start a new run (resume=never)")
        if not (directory / WEIGHTS).is_file():
            from rlvr.checkpoint import ResumeError

            raise ResumeError(f"checkpoint {checkpoint_dir}: its {CRITIC_DIR}/ has no {WEIGHTS} (an older rlvr's "
                              f"layout); start a new run from its policy (model=local model.path={checkpoint_dir})")
        self.critic.load(directory)


def describe(algo: AlgorithmConfig) -> str:
    """The start-up line that says what PPO will do."""
    c = algo.critic
    leash = (f"KL {algo.kl_penalty} term, beta {algo.beta:g}" +
             (f", adaptive to {algo.kl_target:g} per completion" if algo.kl_target > 0 else ", fixed")
             if algo.beta > 0 else "no KL leash (beta = 0)")
    start = c.path or ("a fresh value head" if c.shared else "the policy start weights (fresh value head)")
    where = "a value head on the policy's trunk" if c.shared else "a separate value model"
    return (f"ppo: critic {where}, from {start}, lr {c.lr:g}, "
            f"value clip {c.value_clip:g}, {c.warmup_steps} warm-up step(s) with the policy frozen; GAE gamma "
            f"{algo.gamma:g} lambda {algo.lam:g}{', whitened' if algo.whiten_advantages else ''}; {leash}")

