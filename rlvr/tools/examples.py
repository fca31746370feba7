"""The worked examples of docs/tools.md, kept as working code (tests/rlvr/test_tool_examples.py runs them and
checks that the doc quotes them verbatim).

    lookup         a tool: one small class with a schema and a batched ``run``
    retry_checker  an environment: the task's verifier checks each answer; a wrong one gets feedback and a retry
    guess_number   an environment: a game; the model guesses the prompt's reference, told "higher" or "lower"

``rollout.tools.env=retry_checker`` and ``rollout.tools.env=guess_number`` find the environments without an
import (they are registered lazily in `rlvr.tools.env`); the ``lookup`` tool registers only when this module
is imported (``rlvr-train`` does not offer it: a package declares its tools through entry points).
"""
from __future__ import annotations

import re
from typing import Any

from rlvr.tools import ToolResult, register_tool
from rlvr.tools.env import Reply, register_environment

__all__ = ["Lookup", "RetryChecker", "GuessNumber"]


@register_tool("lookup")
class Lookup:
    """Look a word up in a table given in the config: rollout.tools.options.lookup.table={word: text}."""

    description = "Look up a word in the glossary and return its definition."
    parameters = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}

    def __init__(self, table: dict | None = None, **options: Any) -> None:
        self.table = {str(k).lower(): str(v) for k, v in (table or {}).items()}

    def run(self, requests):  # every call of this turn across the batch, at once
        results = []
        for request in requests:
            word = str(request.call.arguments.get("word", "")).strip().lower()
            if word in self.table:
                results.append(ToolResult(self.table[word]))
            else:  # never raise for a bad call: it is an error result the model reads
                results.append(ToolResult(f"error: no entry for {word!r}", status="error"))
        return results

    def close(self) -> None:
        pass


@register_environment("retry_checker")
class RetryChecker:
    """The prompt's own verifier checks each answer; a wrong one is told so and may answer again, ``retries`` times."""

    stop = ()  # a model turn ends at its end-of-sequence id only

    def __init__(self, retries: int = 1, feedback: str = "That is not correct. Check your work and answer again.",
                 **verifier_options: Any) -> None:
        self.retries, self.feedback, self.verifier_options = retries, feedback, verifier_options
        self.verifiers: dict[str, Any] = {}

    def reset(self, episode):  # episode: the rlvr.data.Prompt (its verifier, reference and fields)
        from verifiers import get_verifier

        if episode.verifier not in self.verifiers:
            self.verifiers[episode.verifier] = get_verifier(episode.verifier, **self.verifier_options)
        return {"prompt": episode, "retries": self.retries}

    def respond(self, states, turns):
        replies = []
        for state, turn in zip(states, turns):
            prompt = state["prompt"]
            verdict = self.verifiers[prompt.verifier].verify(completion=turn.text, reference=prompt.reference,
                                                             **dict(prompt.fields))
            if verdict.reward > 0 or state["retries"] == 0:
                replies.append(Reply(done=True))  # the run's reward scores the model's text as usual
            else:
                state["retries"] -= 1
                replies.append(Reply(text=self.feedback, records=[
                    {"tool": "retry_checker", "status": "ok", "seconds": 0.0, "reason": verdict.reason}]))
        return replies

    def close(self) -> None:
        pass


@register_environment("guess_number")
class GuessNumber:
    """Guess the prompt's reference (an integer): each guess is answered "higher" or "lower"."""

    stop = ()

    def __init__(self, max_guesses: int = 6) -> None:
        self.max_guesses = max_guesses

    def reset(self, episode):
        return {"secret": int(episode.reference), "guesses": 0}

    def respond(self, states, turns):
        replies = []
        for state, turn in zip(states, turns):
            numbers = re.findall(r"-?\d+", turn.text)
            state["guesses"] += 1
            if numbers and int(numbers[-1]) == state["secret"] or state["guesses"] >= self.max_guesses:
                replies.append(Reply(done=True))  # the task's verifier scores the last guess
                continue
            hint = "Answer with a number." if not numbers else (
                "higher" if int(numbers[-1]) < state["secret"] else "lower")
            replies.append(Reply(text=hint, records=[{"tool": "guess_number", "status": "ok", "seconds": 0.0,
                                                      "reason": "wrong_guess"}]))
        return replies

    def close(self) -> None:
        pass
