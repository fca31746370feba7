"""Everything a run writes besides checkpoints.

    <run_dir>/config.yaml          resolved configuration
    <run_dir>/metrics.jsonl        one JSON object per step (and per evaluation)
    <run_dir>/samples/step_N.jsonl sample rollouts with verdicts, failed ones included
    <run_dir>/curve.png            reward and held-out accuracy against step
    <run_dir>/summary.json         accuracy before/after, steps, wall time (at the end)
    <run_dir>/tensorboard/, wandb/ optional loggers (logger.tensorboard / logger.wandb)

With several ranks only rank 0's `RunDir` writes (``writer=True``); the others hold the same
path (broadcast by rank 0) and every write is a no-op there.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from rlvr.config import LoggerConfig

__all__ = ["RunDir"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunDir:
    def __init__(self, path: str | Path, logger: LoggerConfig, writer: bool = True):
        self.path, self.writer = Path(path), writer  # writer: False on ranks > 0 (rank 0 writes)
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.path / "metrics.jsonl"
        self.cfg = logger
        self._tb = self._wandb = None

    def open_loggers(self, config: dict) -> None:
        if not self.writer:
            return
        if self.cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path / "tensorboard"))
        if self.cfg.wandb:
            import wandb

            os.environ.setdefault("WANDB_MODE", "offline")
            self._wandb = wandb.init(project=self.cfg.wandb_project, dir=str(self.path), config=config,
                                     name=self.path.name, resume="allow", id=self.path.name)

    def truncate_metrics(self, step: int) -> None:
        """On resume: forget everything logged after the checkpoint's step."""
        if not self.writer:
            return
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        tmp = self.metrics_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.metrics_path)

    def log(self, row: dict[str, Any]) -> None:
        if not self.writer:
            return
        row = {k: _clean(v) for k, v in row.items()}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        step = int(row.get("step", 0))
        numeric = {k: v for k, v in row.items() if isinstance(v, (int, float)) and v is not None and k != "step"}
        if self._tb is not None:
            for k, v in numeric.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(numeric, step=step)

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed run
        return rows

    def write_samples(self, step: int, samples: Iterable[dict[str, Any]]) -> None:
        if not self.writer:
            return
        folder = self.path / "samples"
        folder.mkdir(exist_ok=True)
        with open(folder / f"step_{step:06d}.jsonl", "w") as f:
            for s in samples:
                f.write(json.dumps(s, default=str) + "\n")

    def write_json(self, name: str, payload: dict[str, Any]) -> Path:
        target = self.path / name
        if not self.writer:
            return target
        target.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return target

    def plot_curve(self) -> Path:
        """reward/mean and pass_rate per step, eval accuracies at their steps."""
        if not self.writer:
            return self.path / "curve.png"
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read_metrics()
        train = [r for r in rows if r.get("reward/mean") is not None and r.get("pass_rate") is not None]
        evals = [r for r in rows if "eval/pass@1" in r]
        fig, ax = plt.subplots(figsize=(7, 4))
        if train:
            ax.plot([r["step"] for r in train], [r["reward/mean"] for r in train], label="reward (train)", alpha=0.6)
            ax.plot([r["step"] for r in train], [r["pass_rate"] for r in train], label="pass rate (train)", alpha=0.6)
        for key, style in (("eval/pass@1", "o-"), ("eval/pass@k", "s--")):
            pts = [(r["step"], r[key]) for r in evals if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=f"held-out {key.split('/')[1]}")
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, max(1.02, max((r["reward/mean"] for r in train), default=0) + 0.05))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        target = self.path / "curve.png"
        fig.tight_layout()
        fig.savefig(target, dpi=100)
        plt.close(fig)
        return target

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
