"""Reward sources (verifiers, reward models) behind one protocol, summed by `RewardScorer`."""
from rlvr.rewards.base import SOURCE_KINDS, RewardSource, SourceContext, SourceScores, register_source_kind
from rlvr.rewards.scorer import RewardResult, RewardScorer, reward_metrics, source_labels
from rlvr.rewards.verifier import ROW_VERIFIER

__all__ = ["RewardScorer", "RewardResult", "reward_metrics", "source_labels", "RewardSource", "SourceScores",
           "SourceContext", "SOURCE_KINDS", "register_source_kind", "ROW_VERIFIER"]
