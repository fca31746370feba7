"""What the benches that run TRL's GRPOTrainer share: a per-step timer and the `math` reward."""
from __future__ import annotations

import time


def step_timer():
    """A TrainerCallback recording each optimizer step's wall time in ``.times``."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.start = [], 0.0

        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.start)

    return StepTimer()


def math_reward():
    """A TRL reward function scoring chat completions with rlvr's `math` verifier against ``reference``."""
    from verifiers import get_verifier

    verifier = get_verifier("math")

    def reward(completions, reference, **_):
        return [verifier.verify(completion=c[0]["content"], reference=r).reward for c, r in zip(completions, reference)]

    return reward
