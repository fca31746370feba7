"""Rule reward sources: registered plain Python checks, run in-process (``kind: rule``).

A *rule* is a pure function ``(prompt, completion, **options) -> (score, reason)`` with a
score in [0, 1] and a short reason code; its options are keyword-only parameters, so a
rule's signature is its option schema (unknown or missing options are errors when the
config is validated, before any model is built). Rules register in `RULES`::

    @register_rule("no_emoji")
    def no_emoji(prompt, completion, *, allowed: int = 0):
        n = sum(ord(c) > 0x2600 for c in completion)
        return (1.0, "met") if n <= allowed else (0.0, "emoji")

Shipped rules:

    length_budget       within ``max_chars`` characters (stripped); ``falloff_chars`` > 0 makes it soft:
                        the score falls linearly to 0 over that many characters past the budget
    banned_phrase       none of ``phrases`` appears (case-insensitive unless ``case_sensitive``)
    greeting            opens with one of ``words`` followed by ``!`` or ``,`` ("Hi! ...")
    regex               ``pattern`` is found (``mode: search``) or matches the whole answer (``fullmatch``)
    preference.correct  the built-in preference task's hidden dimensions, read from the row's spec
    preference.clean    (its ``reference``; `verifiers.preference`): the same checks as its true rule,
    preference.polite   one dimension each, so a rubric can reward and report them one by one
    preference.concise

A rule may carry ``check_options(**options)`` (raising ValueError) so its option values
are checked at validation too (``regex`` compiles its pattern there).

A rule source never decides pass/fail (verifiers do) and is not learned. A rule that
raises scores 0 with reason ``rule_error``; a score outside [0, 1] (or not a number)
scores 0 with reason ``bad_score``: counted in ``verdict/<label>/<reason>``, never a crash.
"""
from __future__ import annotations

import inspect
import math
import re
from typing import Any, Callable, Mapping, Sequence

import torch

from rlvr.config import ConfigError
from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.registry import Registry, RegistryError
from rlvr.rewards.base import SourceContext, SourceScores

__all__ = ["RULES", "register_rule", "RuleSource", "check_rule_options", "check_rule_source", "run_rule", "MET"]

Rule = Callable[..., tuple[float, str]]
RULES: Registry[Rule] = Registry("rule")
register_rule = RULES.register
MET = "met"  # the reason of a rule that is satisfied


def check_rule_options(where: str, name: str, options: Mapping[str, Any]) -> None:
    """The rule exists and its keyword-only parameters accept exactly these options."""
    try:
        rule = RULES.lookup(name)
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    params = [p for p in inspect.signature(rule).parameters.values() if p.kind is p.KEYWORD_ONLY]
    valid = {p.name for p in params}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"{where}: rule {name!r} has no option(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(valid)) or 'none'}")
    missing = [p.name for p in params if p.default is p.empty and p.name not in options]
    if missing:
        raise ConfigError(f"{where}: rule {name!r} needs option(s) {', '.join(missing)}; set them under options")
    check_values = getattr(rule, "check_options", None)  # optional: a rule's own check of its option values
    if check_values is not None:
        try:
            check_values(**options)
        except (ValueError, TypeError, re.error) as exc:
            raise ConfigError(f"{where}: rule {name!r}: {exc}") from None


def check_rule_source(where: str, src: SourceConfig) -> None:
    """`reward.sources[i]` of kind rule: ``check`` (or ``name``) is a rule that takes these options."""
    check_rule_options(where, src.check or src.name, src.options)


def run_rule(rule: Rule, prompt: Prompt, completion: str, options: Mapping[str, Any]) -> tuple[float, str]:
    """One rule call; an exception or a score outside [0, 1] is a counted reason, never a crash."""
    try:
        score, reason = rule(prompt, completion, **options)
    except Exception:  # noqa: BLE001 - a user rule may fail in any way; it is counted, the run goes on
        return 0.0, "rule_error"
    try:
        score = float(score)
    except (TypeError, ValueError):
        return 0.0, "bad_score"
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        return 0.0, "bad_score"
    return score, str(reason)


class RuleSource:
    decides_pass = False
    learned = False

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        self.rule_name = cfg.check or cfg.name
        check_rule_options(f"reward source {label!r}", self.rule_name, cfg.options)
        self.rule, self.options = RULES.lookup(self.rule_name), dict(cfg.options)
        self.label, self.weight = label, cfg.weight

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        results = [run_rule(self.rule, p, c, self.options) for p, c in zip(prompts, completions)]
        rewards = torch.tensor([s for s, _ in results], dtype=torch.float32)
        return SourceScores(rewards, [r for _, r in results])

    def close(self) -> None:
        pass


# ---- the shipped rules ----------------------------------------------------------------
@register_rule("length_budget")
def length_budget(prompt: Prompt, completion: str, *, max_chars: int, falloff_chars: int = 0) -> tuple[float, str]:
    over = len(completion.strip()) - int(max_chars)
    if over <= 0:
        return 1.0, MET
    return (max(0.0, 1.0 - over / falloff_chars) if falloff_chars > 0 else 0.0), "too_long"


@register_rule("banned_phrase")
def banned_phrase(prompt: Prompt, completion: str, *, phrases: Sequence[str],
                  case_sensitive: bool = False) -> tuple[float, str]:
    text = completion if case_sensitive else completion.lower()
    found = any((p if case_sensitive else str(p).lower()) in text for p in phrases)
    return (0.0, "banned_phrase") if found else (1.0, MET)


@register_rule("greeting")
def greeting(prompt: Prompt, completion: str, *,
             words: Sequence[str] = ("hi", "hello", "sure", "hey")) -> tuple[float, str]:
    from verifiers.preference import is_polite

    return (1.0, MET) if is_polite(completion, {"greetings": [str(w).lower() for w in words]}) else (0.0, "impolite")


_MODES = {"search": re.search, "fullmatch": re.fullmatch}


@register_rule("regex")
def regex(prompt: Prompt, completion: str, *, pattern: str, mode: str = "search") -> tuple[float, str]:
    return (1.0, MET) if _MODES[mode](pattern, completion, flags=re.DOTALL) else (0.0, "no_match")


def _check_regex(pattern: str, mode: str = "search") -> None:
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}; choose search or fullmatch")
    re.compile(pattern, re.DOTALL)


regex.check_options = _check_regex  # type: ignore[attr-defined]


def _preference_rule(dimension: str) -> Rule:
    from verifiers.preference import DIMENSIONS, parse_spec

    check, failure = DIMENSIONS[dimension]

    def rule(prompt: Prompt, completion: str) -> tuple[float, str]:
        try:
            spec = parse_spec(prompt.reference)
        except ValueError:
            return 0.0, "bad_reference"
        return (1.0, MET) if check(completion, spec) else (0.0, failure)

    rule.__name__ = rule.__qualname__ = f"preference_{dimension}"
    rule.__doc__ = f"The built-in preference task's {dimension!r} dimension ({check.__doc__})"
    return rule


def _register_preference_rules() -> None:
    from verifiers.preference import DIMENSIONS

    for dimension in DIMENSIONS:
        register_rule(f"preference.{dimension}")(_preference_rule(dimension))


_register_preference_rules()
