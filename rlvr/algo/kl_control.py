"""KL coefficient controllers (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences").

    fixed      the coefficient never changes (``algorithm.kl_target`` = 0)
    adaptive   e = clip(KL / target - 1, -0.2, 0.2);  coef <- coef * (1 + e * n / horizon)

where KL is the measured KL of the step (per completion, summed over its tokens) and n the
completions it was measured on. The coefficient is the controller's whole state: the loop keeps it
in ``algorithm.beta`` (the KL coefficient every algorithm uses), so checkpoints and the watch's
"raise the KL leash" act on it as on GRPO's.
"""
from __future__ import annotations

__all__ = ["adaptive_kl_coef"]


def adaptive_kl_coef(coef: float, kl: float, target: float, n: int, horizon: int) -> float:
    """The next coefficient of Ziegler's adaptive controller (``target <= 0``: unchanged)."""
    if target <= 0:
        return coef
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return coef * (1.0 + error * n / horizon)
