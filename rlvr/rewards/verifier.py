"""Verifier reward sources: verdicts from worker processes with hard per-sample deadlines.

``name: verifier`` scores each row with its own verifier (``data.verifier`` or the row's
``verifier`` field); any other name applies that registered verifier to every row
(``format``, ``exact``, ...). A hung or crashing check costs one deadline (reason
``timeout`` / ``crash``), never the run. A row whose verifier is ``none`` (``data.verifier:
none``, or the row's own field) has no check: this source does not apply to it (reason
``no_verifier``), and the run's other sources (a reward model) score it alone.
"""
from __future__ import annotations

from typing import Sequence

import torch

from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores

__all__ = ["VerifierSource", "ROW_VERIFIER", "NO_VERIFIER"]

ROW_VERIFIER = "verifier"
NO_VERIFIER = "none"  # a row's verifier name meaning "no check: scored by the other sources alone"


class VerifierSource:
    decides_pass = True
    learned = False

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        from verifiers.registry import get_factory

        self.name = cfg.check or cfg.name  # a rubric dimension's label (name) can differ from its verifier
        self.options, self.weight, self.label, self.ctx = dict(cfg.options), cfg.weight, label, ctx
        if self.name != ROW_VERIFIER:
            get_factory(self.name)  # an unknown name lists the known ones
        ctx.verifier_pool()  # start the workers now: they warm up while the model loads

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        from verifiers.runtime import VerifyTask

        names = [p.verifier if self.name == ROW_VERIFIER else self.name for p in prompts]
        checked = [i for i, name in enumerate(names) if name != NO_VERIFIER]
        tasks = [VerifyTask(names[i], completions[i], prompts[i].reference, fields=dict(prompts[i].fields),
                            options=self.options) for i in checked]
        verdicts = self.ctx.verifier_pool().verify(tasks) if tasks else []
        rewards, reasons = torch.zeros(len(prompts), dtype=torch.float32), ["no_verifier"] * len(prompts)
        for i, v in zip(checked, verdicts):
            rewards[i], reasons[i] = float(v.reward), v.reason
        applies = None if len(checked) == len(prompts) else torch.tensor([n != NO_VERIFIER for n in names])
        return SourceScores(rewards, reasons, torch.tensor([r == "correct" for r in reasons], dtype=torch.bool),
                            applies=applies)

    def close(self) -> None:  # the shared pool is closed by the scorer
        pass
