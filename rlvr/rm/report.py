"""What `rlvr-rm` prints and plots: console lines, the training curve, the training-answer statistics."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlvr.preference import PreferenceSet, prompt_key
from rlvr.rm.metrics import reward_stats

__all__ = ["step_line", "eval_line", "plot_rm_curve", "answer_stats"]


def step_line(row: dict[str, Any], total: int) -> str:
    return (f"rm step {row['step']:>5}/{total} | loss {row['train/loss']:.4f} | acc {row['train/accuracy']:.3f} | "
            f"margin {row['train/margin']:+.3f} | gnorm {row['train/grad_norm']:.3f} | lr {row['train/lr']:.2e} | "
            f"{row['time/step']:.3f}s")


def eval_line(row: dict[str, Any]) -> str:
    names = sorted({k.split("/")[1] for k in row if k.startswith("eval/")}, key=lambda n: (n == "train", n))
    parts = []
    for n in names:
        g = row.get(f"eval/{n}/length_bias_gap")
        gap = f", length gap {g:+.3f}" if g is not None and g == g else ""
        parts.append(f"{n} acc {row[f'eval/{n}/accuracy']:.3f} (loss {row[f'eval/{n}/loss']:.4f}{gap})")
    return f"eval step {row['step']}: " + " | ".join(parts)


def answer_stats(pairs: PreferenceSet, chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, Any]:
    """`reward_stats` over the distinct training answers (an answer in several pairs counts once)."""
    seen: set[tuple[str, str]] = set()
    picked: list[torch.Tensor] = []
    for i, pair in enumerate(pairs.pairs):
        key = prompt_key(pair)
        for text, score in ((pair.chosen, chosen[i]), (pair.rejected, rejected[i])):
            if (key, text) not in seen:
                seen.add((key, text))
                picked.append(score)
    return reward_stats(torch.stack(picked))


def plot_rm_curve(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Training loss and accuracy per step, eval accuracies at their steps -> ``path``/curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if r.get("train/loss") is not None]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        left.plot([r["step"] for r in train], [r["train/loss"] for r in train], alpha=0.7, label="train loss (batch)")
        right.plot([r["step"] for r in train], [r["train/accuracy"] for r in train], alpha=0.4,
                   label="train accuracy (batch)")
    names = sorted({k.split("/")[1] for r in evals for k in r if k.startswith("eval/")})
    for name in names:
        pts = [(r["step"], r[f"eval/{name}/accuracy"]) for r in evals if r.get(f"eval/{name}/accuracy") is not None]
        if pts:
            right.plot(*zip(*pts), "o-", label=f"{name} accuracy")
    left.set_xlabel("step")
    left.set_title("Bradley-Terry loss")
    right.set_xlabel("step")
    right.set_title("pairwise accuracy")
    right.set_ylim(-0.02, 1.02)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    target = Path(path) / "curve.png"
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target
