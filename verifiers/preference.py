"""The true preference rule of the built-in preference task, and its ``preference_rule`` verifier.

A chat answer is judged along four hidden dimensions, each a plain function of the
answer text and the prompt's *spec* (the row's ``reference``)::

    {"answer": "blue", "wrong": ["green", "red"], "max_chars": 21, "banned": ["as an ai"],
     "greetings": ["hi", "hello", "sure", "hey"]}

    correct   the word ``answer`` is in the answer, no ``wrong`` word is  (reason ``wrong_answer``)
    clean     no ``banned`` phrase appears, case-insensitively          (reason ``banned_phrase``)
    polite    it opens with a greeting word followed by ! or ,           (reason ``impolite``)
    concise   at most ``max_chars`` characters (stripped)                (reason ``too_long``)

`true_score` weighs them (correct 2, the others 1 each) and takes 0.02 per character
beyond the budget, so among rambling answers the longer one is worse: a person
prefers the answer with the higher true score, and two answers with equal scores tie.
An answer is *true-preferred* when it meets every dimension (score 5, the maximum);
the ``preference_rule`` verifier gives it reward 1.0 and reason ``correct``, any other
answer reward 0.0 with the first failed dimension in the order above as its reason
(all failed ones are listed in ``details["failed"]``). Words are compared
case-insensitively, whole words only. A spec that is not a dict with a non-empty
``answer`` is ``bad_reference``; a non-string completion ``bad_input``.

Pure and deterministic, linear in the answer's length; no torch, no trainer imports.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping

from verifiers.base import BaseVerifier, Verdict
from verifiers.registry import register

__all__ = ["DIMENSIONS", "WEIGHTS", "OVERLONG_PENALTY", "is_correct", "is_clean", "is_polite", "is_concise",
           "failed_dimensions", "true_score", "true_preferred", "parse_spec", "PreferenceRuleVerifier",
           "DEFAULT_BANNED", "DEFAULT_GREETINGS", "DEFAULT_MAX_CHARS"]

DEFAULT_MAX_CHARS = 24
DEFAULT_BANNED = ("as an ai",)
DEFAULT_GREETINGS = ("hi", "hello", "sure", "hey")
OVERLONG_PENALTY = 0.02  # true-score cost per character beyond the budget
_WORD = re.compile(r"[a-z0-9]+")
_OPENING = re.compile(r"\s*([A-Za-z]+)\s*[!,]")


def parse_spec(reference: Any) -> dict[str, Any]:
    """The spec as a dict with every field filled in; ``ValueError`` when it is unusable."""
    if isinstance(reference, (str, bytes)):
        try:
            reference = json.loads(reference)
        except ValueError:
            raise ValueError("the reference is not JSON") from None
    if not isinstance(reference, Mapping) or not str(reference.get("answer") or "").strip():
        raise ValueError("the reference must be a dict with a non-empty 'answer'")
    wrong = reference.get("wrong", [])
    if isinstance(wrong, str) or not isinstance(wrong, (list, tuple)):
        raise ValueError("the reference's 'wrong' must be a list of words")
    return {"answer": str(reference["answer"]).lower(), "wrong": [str(w).lower() for w in wrong],
            "max_chars": int(reference.get("max_chars", DEFAULT_MAX_CHARS)),
            "banned": [str(b).lower() for b in reference.get("banned", DEFAULT_BANNED)],
            "greetings": [str(g).lower() for g in reference.get("greetings", DEFAULT_GREETINGS)]}


def is_correct(text: str, spec: Mapping[str, Any]) -> bool:
    """The right word is said, and no wrong one (whole words, case-insensitive)."""
    words = set(_WORD.findall(text.lower()))
    return str(spec["answer"]).lower() in words and not words & {str(w).lower() for w in spec["wrong"]}


def is_clean(text: str, spec: Mapping[str, Any]) -> bool:
    """No banned phrase, case-insensitively."""
    low = text.lower()
    return not any(str(phrase).lower() in low for phrase in spec["banned"])


def is_polite(text: str, spec: Mapping[str, Any]) -> bool:
    """Opens with a greeting word followed by ``!`` or ``,`` (``Hi! ...``, ``Hello, ...``)."""
    match = _OPENING.match(text)
    return match is not None and match.group(1).lower() in {str(g).lower() for g in spec["greetings"]}


def is_concise(text: str, spec: Mapping[str, Any]) -> bool:
    """Within the length budget (characters, surrounding whitespace ignored)."""
    return len(text.strip()) <= int(spec["max_chars"])


# name -> (check, reason when it fails), in the order reasons are reported
DIMENSIONS: dict[str, tuple[Callable[[str, Mapping[str, Any]], bool], str]] = {
    "correct": (is_correct, "wrong_answer"),
    "clean": (is_clean, "banned_phrase"),
    "polite": (is_polite, "impolite"),
    "concise": (is_concise, "too_long"),
}
WEIGHTS = {"correct": 2.0, "clean": 1.0, "polite": 1.0, "concise": 1.0}


def failed_dimensions(text: str, spec: Mapping[str, Any]) -> list[str]:
    """Names of the dimensions the answer misses, in `DIMENSIONS` order."""
    return [name for name, (check, _) in DIMENSIONS.items() if not check(text, spec)]


def true_score(text: str, spec: Mapping[str, Any]) -> float:
    """Weighted dimensions met, minus `OVERLONG_PENALTY` per character over the budget."""
    failed = set(failed_dimensions(text, spec))
    over = max(0, len(text.strip()) - int(spec["max_chars"]))
    return round(sum(w for name, w in WEIGHTS.items() if name not in failed) - OVERLONG_PENALTY * over, 6)


def true_preferred(text: str, spec: Mapping[str, Any]) -> bool:
    """The answer meets every hidden dimension."""
    return not failed_dimensions(text, spec)


@register("preference_rule")
class PreferenceRuleVerifier(BaseVerifier):
    """Reward 1.0 for an answer that meets every dimension of its spec, else 0.0 with the first failure."""

    def verify(self, *, completion: Any, reference: Any, **fields: Any) -> Verdict:
        if not isinstance(completion, str):
            return Verdict(0.0, "bad_input", {"type": type(completion).__name__})
        try:
            spec = parse_spec(reference)
        except ValueError as exc:
            return Verdict(0.0, "bad_reference", {"error": str(exc)})
        failed = failed_dimensions(completion, spec)
        details = {"failed": failed, "true_score": true_score(completion, spec)}
        if not failed:
            return Verdict(1.0, "correct", details)
        return Verdict(0.0, DIMENSIONS[failed[0]][1], details)
