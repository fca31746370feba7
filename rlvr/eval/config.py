"""The evaluation system's config blocks, every field typed and documented once: ``rubric``
(`RubricConfig`: named, weighted dimensions; what they do: `rlvr.eval.rubric`) and ``watch.*``
(`WatchConfig`: the reward-hacking watch's thresholds; the checks: `rlvr.eval.watch_checks`).

Plain dataclasses with no imports from rlvr, so the schema (`rlvr.config`) can hold them without
loading the evaluation system (the watch needs torch).

A watch condition must hold for ``patience`` consecutive steps before its alert is raised
(the trend test is windowed already and fires at once); ``0`` turns a threshold off.
What each figure means, and why the defaults are what they are: docs/evaluation.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["WatchConfig", "RubricConfig", "RubricDimension"]


@dataclass
class RubricDimension:
    name: str = "???"  # the dimension's label in metrics (reward/<name>/mean); letters, digits, _ . -
    description: str = ""  # what the dimension means (documentation; the judge's criterion text)
    kind: str = "verifier"  # verifier | rule | rm | judge
    weight: float = 1.0  # weight in reward.mix (0 = measured and reported, not rewarded)
    check: Optional[str] = None  # kind verifier: a registered verifier (null = `verifier`, each row's own);
    #                              kind rule: a registered rule name (rlvr/rewards/rule.py)
    path: Optional[str] = None  # kind rm: the reward-model directory (rlvr-rm output)
    options: dict[str, Any] = field(default_factory=dict)  # the verifier's / rule's / reward model's / judge's options


@dataclass
class RubricConfig:
    name: Optional[str] = None  # the rubric's name (null with no dimensions = no rubric: reward.sources as given)
    version: Optional[str] = None  # optional human label, prefixed to the content hash (e.g. "v2")
    description: str = ""  # what the rubric is for
    dimensions: list[RubricDimension] = field(default_factory=list)  # the dimensions; each becomes a reward source


@dataclass
class WatchConfig:
    enabled: bool = True  # run the watch every step (figures watch/*, alerts alert/*, badcases.jsonl)
    baseline_steps: int = 3  # the first N observed steps define "the start" (length, entropy baselines)
    patience: int = 3  # consecutive steps a condition must hold before its alert is raised
    length_ratio_max: float = 2.0  # alert: mean completion length above this multiple of the start's
    truncation_max: float = 0.3  # alert: fraction of completions cut at max_new_tokens above this
    reward_length_corr_max: float = 0.5  # alert: Pearson(learned reward, length) within the batch above this
    diversity_needs_learned: bool = True  # diversity alerts only when a learned reward is in the mix (with
    #   verifiers alone, converging on the one right answer is the goal, not a collapse)
    distinct2_min: float = 0.2  # alert: mean within-group distinct-2 (unique token bigrams / bigrams) below this
    unique_frac_min: float = 0.3  # alert: mean within-group fraction of distinct completions below this
    zero_spread_max: float = 0.9  # alert: fraction of groups whose rewards are all equal above this
    entropy_ratio_min: float = 0.2  # alert: mean token entropy below this fraction of the start's
    kl_per_sequence_max: float = 20.0  # alert: mean KL to the reference per completion (nats) above this
    trend_window: int = 16  # steps in the learned-vs-checkable trend test (Mann-Kendall over the window)
    trend_z_rise: float = 2.0  # the learned reward "rises": its Mann-Kendall z is at least this
    trend_z_flat: float = 1.0  # the checkable quality "stays flat": its Mann-Kendall z is below this
    rm_margin_std: float = 1.0  # an RM score is "far outside" its saved statistics beyond [min, max] widened by
    #   this many saved standard deviations
    rm_outside_frac_max: float = 0.1  # alert: fraction of a reward model's scores far outside above this
    rm_mean_z_max: float = 3.0  # alert: |batch mean - saved mean| / saved std above this
    samples_per_alert: int = 4  # triggering samples written to badcases.jsonl when an alert is raised
    failed_per_step: int = 4  # failed rollouts (a checkable source said no) kept per step in badcases.jsonl
    disagreements_per_step: int = 4  # learned-vs-checkable disagreements kept per step (each with a counterpart)
    disagreement_quantile: float = 0.25  # "high" / "low" learned reward: the batch's top / bottom quantile
    stop_on: list[str] = field(default_factory=list)  # alert names (e.g. length_ratio) that request a stop
    raise_kl_on: list[str] = field(default_factory=list)  # alert names that request a higher KL coefficient
    kl_factor: float = 2.0  # the factor such a request multiplies algorithm.beta by (needs beta > 0)
    disabled: list[str] = field(default_factory=list)  # checks not to run (names: docs/evaluation.md)
    report: bool = True  # write report.html / report.png and merge summary.json at the end of the run
