"""The reward-source protocol and the registry of source kinds (``reward.sources[i].kind``).

A source scores (prompts, completions) and returns one reward and one reason per
completion, plus, for sources that can decide it, whether each completion *passed*:

    verifier   a verifier's verdicts (the row's own verifier, or one named verifier for
               every row), scored in `VerifierPool` workers with hard deadlines; it
               decides `passed` (verdict ``correct``)
    model      a sequence-classification model's score (`rlvr.rewards.model`: rlvr-rm's or a
               third-party one), normalized by its saved statistics or running ones, clipped;
               it never decides `passed`
    rule       a registered plain Python check in [0, 1] (`rlvr.rewards.rule`); not learned
    judge      an LLM judge's rubric scores, rankings of a prompt's answers or pairwise verdicts, over an
               OpenAI-compatible endpoint or from a local model in-process (`rlvr.rewards.judge`);
               learned; timeouts and unparseable answers are excluded and counted

**Not applying vs failing.** A source may leave a row out in two ways, both as
``applies`` False: *by design* (a row without a verifier is scored by the other sources
alone: its total is theirs, and the row trains as usual), or because it *should have
scored the row but failed*: its reason is one of `EXCLUDED_REASONS` (a judge's
``timeout``, ``parse_error``, ``outage``, ``bad_response``, ``too_long``). A failure is never a reward of
0: the row is *excluded* (`rlvr.rewards.scorer.RewardResult.excluded`) when a failed
source has a non-zero weight, and an excluded row enters nothing the policy sees (see
`rlvr.rewards.scorer`). A verifier that hangs on the policy's own code is not a failure
of the source: that ``timeout`` is the answer's fault, scores 0 and applies.

A rubric (``rubric=NAME``, `rlvr.eval.rubric`) derives the sources from its dimensions.

How they combine is `reward.mix` (`rlvr.rewards.mix`): a weighted sum, or `gated`, where
the checks decide the reward level and the learned scores only order answers within it.

pass@1 and pass@k are reported only where some source decides `passed`; otherwise
evaluation reports the mean reward per source.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

import torch

from rlvr.data.schema import Prompt
from rlvr.registry import Registry

__all__ = ["SourceScores", "RewardSource", "SourceContext", "SOURCE_KINDS", "SOURCE_CHECKS", "register_source_kind",
           "EXCLUDED_REASONS"]

# reasons of a row a source should have scored but could not (with `applies` False): excluded, never a 0
EXCLUDED_REASONS = frozenset({"parse_error", "timeout", "outage", "bad_response", "too_long"})


@dataclass
class SourceScores:
    rewards: torch.Tensor  # [N] float32 rewards of this source (what the mix uses)
    reasons: list[str]  # [N] short reason codes (verdicts; `scored` for a model)
    passed: Optional[torch.Tensor] = None  # [N] bool where the source decides pass/fail, else None
    raw: Optional[torch.Tensor] = None  # [N] the score before normalization (reward models), else None
    applies: Optional[torch.Tensor] = None  # [N] bool: rows this source scores (None = every row); a row
    #                                          without a verifier is scored by the other sources alone; a row
    #                                          left out with a reason in EXCLUDED_REASONS is a failure (excluded)
    consistency: Optional[torch.Tensor] = None  # [N, 2] comparative judges: (pairs re-asked with positions swapped,
    #                                              of them flipped), credited to the rows compared; else None
    calls: Optional[int] = None  # judges: requests sent to the judge for this batch (cache hits and repeats in
    #                              the batch not counted; a too-long group and its pairs both counted); else None


class RewardSource(Protocol):
    label: str  # unique name in metrics: reward/<label>/mean, verdict/<label>/<reason>
    weight: float
    decides_pass: bool
    learned: bool  # a learned score (reward model, judge) rather than a check: the hacking watch and the
    #                gated mix treat the two differently

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores: ...

    def close(self) -> None: ...


@dataclass
class SourceContext:
    """What sources share: the verifier pool settings, the learner's device and the policy's precision."""

    workers: int
    timeout: float
    device: torch.device
    pool: Any = None  # one VerifierPool shared by every verifier source, started on first need
    dtype: str = "fp32"  # frozen models' precision (model.frozen_dtype, else model.dtype): what reward models load in
    #                      unless their options.dtype says otherwise

    def verifier_pool(self):
        if self.pool is None:
            from verifiers.runtime import VerifierPool

            self.pool = VerifierPool(workers=self.workers, timeout=self.timeout)
        return self.pool


SOURCE_KINDS: Registry[Callable[..., RewardSource]] = Registry("reward.sources[].kind")
register_source_kind = SOURCE_KINDS.register
SOURCE_KINDS.register_lazy("verifier", "rlvr.rewards.verifier:VerifierSource")
SOURCE_KINDS.register_lazy("model", "rlvr.rewards.model:RewardModelSource")
SOURCE_KINDS.register_lazy("rule", "rlvr.rewards.rule:RuleSource")
SOURCE_KINDS.register_lazy("judge", "rlvr.rewards.judge:JudgeSource")
# kind -> check(where, source config) run by `rlvr.config_checks.check_names` before anything is built (raises ConfigError)
SOURCE_CHECKS: Registry[Callable[[str, Any], None]] = Registry("reward.sources[].kind")
SOURCE_CHECKS.register_lazy("model", "rlvr.rewards.model:check_model_source")
SOURCE_CHECKS.register_lazy("rule", "rlvr.rewards.rule:check_rule_source")
SOURCE_CHECKS.register_lazy("judge", "rlvr.rewards.judge:check_judge_source")
