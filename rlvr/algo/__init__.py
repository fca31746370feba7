"""The RL stage's math as pure tensor functions: advantage estimators and policy losses (registries), PPO's GAE,
value loss and KL controller (`gae`, `kl_control`)."""
from rlvr.algo.advantages import (ADVANTAGE_ESTIMATORS, CRITIC_ESTIMATORS, get_advantage, group_advantages,
                                  rloo_advantages, uses_critic)
from rlvr.algo.correction import CORRECTIONS, Correction, get_correction, mismatch_stats
from rlvr.algo.filtering import zero_variance_groups
from rlvr.algo.losses import LOSSES, PolicyLossOutput, aggregate, clipped_policy_loss, get_loss, k3_kl

__all__ = ["ADVANTAGE_ESTIMATORS", "CRITIC_ESTIMATORS", "uses_critic", "get_advantage", "group_advantages",
           "rloo_advantages", "LOSSES", "get_loss", "clipped_policy_loss", "k3_kl", "aggregate",
           "PolicyLossOutput", "zero_variance_groups", "CORRECTIONS", "Correction", "get_correction",
           "mismatch_stats"]
