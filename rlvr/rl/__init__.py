"""The RL stage (`rlvr-train`): GRPO and the other registered estimators and losses.

- `train`: the console entry (Hydra, torchrun-aware); `rlvr/train.py` re-exports it
- `run`: the stages of a run in order (data, supervised warm-up, parts, loop)
- `parts`: the policy, reference, engine, reward sources and learner, built from the config
- `loop`: sample groups -> score -> advantages -> update -> log / evaluate / checkpoint
"""
