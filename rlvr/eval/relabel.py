"""Relabellers: rank each prompt's answers into preference rows (``rlvr-badcases``, ``rlvr-coevolve``'s mining).

A relabeller turns review groups (one prompt, its answers; `rlvr.eval.badcases_review`)
into one rank per answer (0 best, equal ranks tie) or None (the answer is left out).
Registered by name in `RELABELLERS`:

    verifier   a registered verifier's reward, higher first (``verifier`` = each row's own);
               ``detail`` breaks ties by a number the verifier puts in its verdict's details
               (the built-in preference rule's ``true_score``); run in the verifier pool
    rule       a registered rule's score (`rlvr.rewards.rule`: ``regex``, ``length_budget``, ...,
               or your own ``@register_rule``), higher first
    judge      an LLM judge's rubric score through the ``judge`` reward source
               (`rlvr.rewards.judge`: options ``base_url``, ``model``, ``items``, ...), higher
               first; an answer the judge failed on (timeout, parse error: the source's
               excluded verdicts) is left out, never ranked last
    file       the labels a person wrote into a review file (``good`` / ``bad`` / a rank)

``rule`` and ``judge`` score through the reward-source interface (`RewardScorer` with that
one source), so whatever a source of that kind can do, a relabeller can; every kind works on
any prompts: the review groups carry each prompt's messages, verifier, reference and fields.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from rlvr.data.chat import DataError
from rlvr.registry import Registry

__all__ = ["Ranker", "RELABELLERS", "make_ranker", "label_rank", "labels_ranker", "verifier_ranker", "source_ranker",
           "dense_ranks"]

_GOOD, _BAD, _SKIP = ("good", "better", "chosen"), ("bad", "worse", "rejected"), ("", "skip")

Ranker = Callable[[list[dict[str, Any]]], list[list[Optional[float]]]]  # groups -> per answer: a rank or None
# name -> factory(check name, options, tie-break detail, per-sample timeout) -> Ranker
RELABELLERS: Registry[Callable[..., Ranker]] = Registry("relabeller")


def make_ranker(kind: str, name: Optional[str], options: dict[str, Any], detail: Optional[str] = None,
                timeout: float = 10.0) -> Ranker:
    """The registered relabeller ``kind`` (unknown kinds list the valid ones, as a ConfigError)."""
    from rlvr.config import ConfigError
    from rlvr.registry import RegistryError

    try:
        factory = RELABELLERS.lookup(kind)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    return factory(name, options, detail, timeout)


def dense_ranks(keys: list[Any]) -> list[float]:
    """0 for the highest key, 1 for the next distinct one, ... (equal keys tie)."""
    order = sorted(set(keys), reverse=True)
    return [float(order.index(k)) for k in keys]


@RELABELLERS.register("file")
def _file(name: Optional[str], options: dict[str, Any], detail: Optional[str], timeout: float) -> Ranker:
    return labels_ranker


def label_rank(label: Any, where: str) -> Optional[float]:
    """good -> 0, bad -> 1, an integer -> itself, empty / skip -> None; anything else is a DataError."""
    if label is None or (isinstance(label, str) and label.strip().lower() in _SKIP):
        return None
    if isinstance(label, bool):
        raise DataError(f"{where}: label {label!r}; use good, bad, an integer rank (0 best), or leave it empty")
    if isinstance(label, (int, float)):
        return float(label)
    text = str(label).strip().lower()
    if text in _GOOD:
        return 0.0
    if text in _BAD:
        return 1.0
    try:
        return float(int(text))
    except ValueError:
        raise DataError(f"{where}: label {label!r}; use good, bad, an integer rank (0 best), or leave it "
                        f"empty") from None


def labels_ranker(groups: list[dict[str, Any]]) -> list[list[Optional[float]]]:
    """The labels in the groups themselves (a filled-in review file)."""
    return [[label_rank(a.get("label"), f"review row {g['id']!r}, answer {i}") for i, a in enumerate(g["answers"])]
            for g in groups]


@RELABELLERS.register("verifier")
def verifier_ranker(name: Optional[str], options: dict[str, Any], detail: Optional[str] = None,
                    timeout: float = 10.0) -> Ranker:
    """Rank by a registered verifier's reward (higher first; `detail` breaks ties), in worker processes."""
    import os

    from rlvr.config import check_verifier
    from verifiers.runtime import VerifierPool, VerifyTask

    name = name or "verifier"

    def rank(groups: list[dict[str, Any]]) -> list[list[Optional[float]]]:
        tasks = [VerifyTask(g.get("verifier") if name == "verifier" else name, a["text"], g.get("reference"),
                            g.get("fields") or {}, options) for g in groups for a in g["answers"]]
        for verifier in sorted({str(t.verifier) for t in tasks}):
            check_verifier("the verifier relabeller", verifier, options)  # unknown name or option: ConfigError
        with VerifierPool(workers=min(2, os.cpu_count() or 1), timeout=timeout) as pool:
            verdicts = iter(pool.verify(tasks))
        out = []
        for g in groups:
            keys = []
            for _ in g["answers"]:
                v = next(verdicts)
                extra = v.details.get(detail) if detail else None
                keys.append((v.reward, float(extra) if isinstance(extra, (int, float)) else 0.0))
            out.append(dense_ranks(keys))
        return out

    return rank


def source_ranker(kind: str, name: str, options: dict[str, Any], timeout: float = 10.0) -> Ranker:
    """Rank by one reward source's score (higher first); answers it does not score (or failed on) are left out."""
    def rank(groups: list[dict[str, Any]]) -> list[list[Optional[float]]]:
        from rlvr.config import RewardConfig, RewardSource
        from rlvr.data.schema import Prompt
        from rlvr.rewards import RewardScorer

        prompts, texts = [], []
        for g in groups:
            prompt = Prompt(tuple(dict(m) for m in g.get("messages") or []), g.get("verifier") or "none",
                            g.get("reference"), fields=g.get("fields") or {}, uid=str(g.get("id", "")))
            prompts += [prompt] * len(g["answers"])
            texts += [a["text"] for a in g["answers"]]
        source = RewardSource(name=name, weight=1.0, options=dict(options), kind=kind,
                              check=name if kind == "rule" else None)
        with RewardScorer(RewardConfig(sources=[source], workers=1, timeout=timeout)) as scorer:
            result = scorer.score(prompts, texts) if texts else None
        scored = [] if result is None else (result.rows(name) & result.valid()).tolist()
        values = [] if result is None else result.per_source[name].tolist()
        out, at = [], 0
        for g in groups:
            n = len(g["answers"])
            keep = [i for i in range(at, at + n) if scored[i]]
            ranks = dict(zip(keep, dense_ranks([values[i] for i in keep])))
            out.append([ranks.get(i) for i in range(at, at + n)])
            at += n
        return out

    return rank


@RELABELLERS.register("rule")
def _rule(name: Optional[str], options: dict[str, Any], detail: Optional[str], timeout: float) -> Ranker:
    from rlvr.config import ConfigError
    from rlvr.rewards.rule import check_rule_options

    if not name:
        raise ConfigError("the rule relabeller needs the name of a registered rule (e.g. regex, length_budget)")
    check_rule_options("the rule relabeller", name, options)  # before anything is read
    return source_ranker("rule", name, options, timeout)


@RELABELLERS.register("judge")
def _judge(name: Optional[str], options: dict[str, Any], detail: Optional[str], timeout: float) -> Ranker:
    from rlvr.config import RewardSource
    from rlvr.rewards.judge import check_judge_source

    label = name or "judge"
    check_judge_source("the judge relabeller", RewardSource(name=label, options=dict(options), kind="judge"))
    return source_ranker("judge", label, options, timeout)
