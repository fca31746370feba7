"""Verifier reward sources: verdicts from worker processes with hard per-sample deadlines.

``name: verifier`` scores each row with its own verifier (``data.verifier`` or the row's
``verifier`` field); any other name applies that registered verifier to every row
(``format``, ``exact``, ...). A hung or crashing check costs one deadline (reason
``timeout`` / ``crash``), never the run.
"""
from __future__ import annotations

from typing import Sequence

import torch

from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores

__all__ = ["VerifierSource", "ROW_VERIFIER"]

ROW_VERIFIER = "verifier"


class VerifierSource:
    decides_pass = True

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        from verifiers.registry import get_factory

        self.name, self.options, self.weight, self.label, self.ctx = cfg.name, dict(cfg.options), cfg.weight, label, ctx
        if self.name != ROW_VERIFIER:
            get_factory(self.name)  # an unknown name lists the known ones
        ctx.verifier_pool()  # start the workers now: they warm up while the model loads

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        from verifiers.runtime import VerifyTask

        tasks = [VerifyTask(p.verifier if self.name == ROW_VERIFIER else self.name, text, p.reference,
                            fields=dict(p.fields), options=self.options) for p, text in zip(prompts, completions)]
        verdicts = self.ctx.verifier_pool().verify(tasks) if tasks else []
        reasons = [v.reason for v in verdicts]
        return SourceScores(torch.tensor([float(v.reward) for v in verdicts], dtype=torch.float32), reasons,
                            torch.tensor([r == "correct" for r in reasons], dtype=torch.bool))

    def close(self) -> None:  # the shared pool is closed by the scorer
        pass
