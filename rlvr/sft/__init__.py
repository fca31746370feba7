"""The SFT stage: `rlvr-sft` (entry `train`, run `run`), the supervised steps (`supervised`), and
`warm_up`, the same stage run before RL and cached (the embedded default's warm-up)."""
from rlvr.sft.run import run, sft_optim, warm_up

__all__ = ["run", "sft_optim", "warm_up"]
