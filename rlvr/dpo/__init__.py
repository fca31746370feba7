"""`rlvr-dpo`: Direct Preference Optimization on the preference schema of `rlvr.preference`.

    config        the typed schema (`DPOConfig`, root config conf/dpo.yaml)
    loss          sigmoid DPO, label smoothing, the added SFT term (pure tensor functions)
    pairs         pairs -> whole-answer log-probs through the supervised batching
    reference     reference log-probs: precomputed once or online (a registry)
    trainer       micro-batched steps through a learner backend; held-out pair metrics
    policy_eval   greedy pass rate (true preference) and sampled KL on held-out prompts
    start         where the policy starts (policy.path or rlvr-train's warm-up) and its merged model.* block
    run / train   the run (checkpoints, resume, several ranks) and its Hydra entry point
"""
from rlvr.dpo.loss import DPOTerms, dpo_loss, pair_metrics

__all__ = ["DPOTerms", "dpo_loss", "pair_metrics"]
