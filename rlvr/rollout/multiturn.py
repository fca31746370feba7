"""Multi-turn rollouts: an engine driven turn by turn through an environment (tool calls inside the rollout).

`MultiTurnEngine` wraps any engine of the protocol (``hf``, ``vllm``) and is itself one, so the
loop, the held-out evaluation, pass@k and ``rlvr-eval`` all sample the same multi-turn rollouts.
Each rollout alternates:

1. a model turn: the inner engine continues from ``prompt ids + every id so far`` (the exact
   sampled ids and the exact inserted ids, never re-encoded text) until an end-of-sequence id, a
   stop string of the environment (a tool call's end), or the rollout's remaining budget;
2. the environment's answer (`rlvr.tools.env`): every active rollout's turn at once (the python
   tool runs the batch's cells concurrently in the sandbox pool); its text is framed by the chat
   template's tool-response turn (`rlvr.tools.insert`) and appended as inserted ids.

The batch it returns interleaves both: ``completion_mask`` is 1 on sampled ids only (the policy
loss, KL, entropy, value loss and GAE, the loss denominators, completion length and the watch
read it), ``context_mask`` on every real id (attention), ``logprobs`` is 0 on inserted ids,
``texts`` is the model's own text (what verifiers score: a tool's output never speaks for the
model), ``transcripts`` the whole exchange with inserted parts marked, and ``tool_records`` one
record per call. Limits: ``max_new_tokens`` counts sampled ids; ``max_context_tokens`` bounds
prompt + completion; an output that would overflow it is cut, and a rollout with no room left for
even the frame ends truncated with an error record.

Turn ``t`` of completion ``j`` of prompt ``i`` draws from the seed of ``(seeds[i], j, t)``, so a
rollout does not depend on which others share its batch or how many turns they took.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import torch

from rlvr.rollout.base import Engine, RolloutBatch, SamplingParams, WeightSource
from rlvr.rollout.hf import left_pad
from rlvr.tools.env import Environment, Turn, truncate_output
from rlvr.tools.insert import Inserter

__all__ = ["MultiTurnEngine", "TOOL_OPEN", "TOOL_CLOSE", "generate_for"]

TOOL_OPEN, TOOL_CLOSE = "[[tool]]", "[[/tool]]"  # how transcripts mark inserted text


def generate_for(engine: Engine, encoded: Sequence[Sequence[int]], params: SamplingParams,
                 seeds: Optional[Sequence[int]], episodes: Sequence[Any]) -> RolloutBatch:
    """``engine.generate``, handing multi-turn engines the episodes (prompts) their environment resets from."""
    if getattr(engine, "multi_turn", False):
        return engine.generate(encoded, params, seeds, episodes=episodes)
    return engine.generate(encoded, params, seeds)


def _turn_seed(seed: int, j: int, turn: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{j}/{turn}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class _Rollout:
    prompt: list[int]
    seed: int
    j: int
    state: Any
    ids: list[int] = field(default_factory=list)
    sampled: list[bool] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    segments: list[tuple[str, str]] = field(default_factory=list)  # ("model" | "tool", text) for the transcript
    records: list[dict] = field(default_factory=list)
    turn_start: int = 0  # where the current model turn began in ids
    insertions: int = 0
    done: bool = False
    truncated: bool = False

    @property
    def n_sampled(self) -> int:
        return sum(self.sampled)


class MultiTurnEngine:
    """An engine that runs each rollout as model turns and environment turns (see the module doc)."""

    multi_turn = True

    def __init__(self, inner: Engine, env: Environment, tokenizer: Any, inserter: Inserter,
                 max_context_tokens: int, max_turns: int = 8):
        self.inner, self.env, self.tokenizer, self.inserter = inner, env, tokenizer, inserter
        self.max_context_tokens, self.max_turns = max_context_tokens, max_turns
        self.pad_id, self.eos_ids = inner.pad_id, inner.eos_ids
        self.shares_policy = getattr(inner, "shares_policy", False)
        self.default_rollout_correction = getattr(inner, "default_rollout_correction", "token_truncate")

    @property
    def weight_version(self) -> int:
        return self.inner.weight_version

    def update_weights(self, source: WeightSource, version: int) -> None:
        self.inner.update_weights(source, version)

    def sleep(self) -> None:
        self.inner.sleep()

    def wake(self) -> None:
        self.inner.wake()

    def close(self) -> None:
        try:
            self.env.close()
        finally:
            self.inner.close()

    def __getattr__(self, name: str) -> Any:  # engine-specific extras (vllm's llm, hf's model) pass through
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 seeds: Optional[Sequence[int]] = None, episodes: Optional[Sequence[Any]] = None) -> RolloutBatch:
        if seeds is None:
            seeds = torch.randint(0, 2**62, (len(prompts),)).tolist()
        rows = [_Rollout(list(p), int(seeds[i]), j, self.env.reset(episodes[i] if episodes is not None else None))
                for i, p in enumerate(prompts) for j in range(params.n)]
        stop = tuple(dict.fromkeys(tuple(params.stop) + tuple(self.env.stop)))
        for turn in range(self.max_turns + 1):
            active = [r for r in rows if not r.done]
            if not active:
                break
            caps = [self._cap(r, params.max_new_tokens) for r in active]
            for r, cap in zip(active, caps):
                if cap <= 0:
                    r.done = r.truncated = True
            live = [(r, cap) for r, cap in zip(active, caps) if cap > 0]
            if not live:
                break
            if turn == self.max_turns:  # the turn limit: the last turns are cut here
                for r, _ in live:
                    r.done = r.truncated = True
                    r.records.append({"tool": None, "status": "error", "seconds": 0.0, "reason": "max_turns"})
                break
            sub = replace(params, n=1, max_new_tokens=max(c for _, c in live), stop=stop, fit_context=True)
            batch = self.inner.generate([r.prompt + r.ids for r, _ in live], sub,
                                        [_turn_seed(r.seed, r.j, turn) for r, _ in live])
            pending: list[tuple[_Rollout, Turn, Optional[int]]] = []
            for k, (r, cap) in enumerate(live):
                real = batch.completion_mask[k].bool()
                toks = batch.completion_ids[k][real].tolist()
                lps = batch.logprobs[k][real].tolist()
                cut = len(toks) > cap
                toks, lps = toks[:cap], lps[:cap]
                r.ids += toks
                r.sampled += [True] * len(toks)
                r.logprobs += lps
                ended = bool(toks) and toks[-1] in self.eos_ids
                if not ended and (cut or bool(batch.truncated[k]) or len(toks) == 0):
                    r.segments.append(("model", self._decode(r.ids[r.turn_start:], True)))
                    r.done = r.truncated = True
                    continue
                text = self._decode(r.ids[r.turn_start:], False)
                pending.append((r, Turn(text, ended, r.insertions), toks[-1] if ended else None))
            replies = self.env.respond([r.state for r, _, _ in pending], [t for _, t, _ in pending]) if pending else []
            for (r, t, last), reply in zip(pending, replies):
                r.records += reply.records
                if reply.cont and not t.ended:
                    continue  # the same model turn goes on (its text keeps accumulating)
                r.segments.append(("model", self._decode(r.ids[r.turn_start:], True)))
                if reply.text is not None:
                    self._insert(r, reply.text, last)
                if reply.done or reply.text is None:
                    r.done = True
        return self._batch(rows)

    def _cap(self, r: _Rollout, budget: int) -> int:
        """How many ids this rollout may sample in its next turn."""
        cap = budget - r.n_sampled
        if self.max_context_tokens:
            cap = min(cap, self.max_context_tokens - len(r.prompt) - len(r.ids))
        return cap

    def _insert(self, r: _Rollout, text: str, last: Optional[int]) -> None:
        ids = self.inserter.ids(text, last)
        if self.max_context_tokens:
            room = self.max_context_tokens - len(r.prompt) - len(r.ids) - 1  # leave the model one id to answer
            if len(ids) > room:
                frame = self.inserter.frame_len()
                if room <= frame:
                    r.records.append({"tool": None, "status": "error", "seconds": 0.0, "reason": "context_full"})
                    r.done = r.truncated = True
                    return
                limit = len(text) * (room - frame) // max(len(ids) - frame, 1)  # characters, scaled by the ids
                while True:
                    text = truncate_output(text, limit)
                    ids = self.inserter.ids(text, last)
                    if len(ids) <= room or limit == 0:
                        break
                    limit = limit * 3 // 4
                if len(ids) > room:
                    r.records.append({"tool": None, "status": "error", "seconds": 0.0, "reason": "context_full"})
                    r.done = r.truncated = True
                    return
        r.ids += ids
        r.sampled += [False] * len(ids)
        r.logprobs += [0.0] * len(ids)
        r.segments.append(("tool", text))
        r.insertions += 1
        r.turn_start = len(r.ids)

    def _decode(self, ids: Sequence[int], skip_special: bool) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special) if ids else ""

    def _batch(self, rows: list[_Rollout]) -> RolloutBatch:
        prompt_ids, prompt_mask = left_pad([r.prompt for r in rows], self.pad_id)
        width = max(1, max(len(r.ids) for r in rows))
        n = len(rows)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        sampled = torch.zeros((n, width))
        context = torch.zeros((n, width))
        logprobs = torch.zeros((n, width))
        for i, r in enumerate(rows):
            if r.ids:
                ids[i, :len(r.ids)] = torch.tensor(r.ids, dtype=torch.long)
                sampled[i, :len(r.ids)] = torch.tensor(r.sampled, dtype=torch.float)
                context[i, :len(r.ids)] = 1.0
                logprobs[i, :len(r.ids)] = torch.tensor(r.logprobs, dtype=torch.float)
        texts = [self._decode([t for t, s in zip(r.ids, r.sampled) if s], True) for r in rows]
        transcripts = ["".join(text if kind == "model" else f"{TOOL_OPEN}{text}{TOOL_CLOSE}"
                               for kind, text in r.segments) for r in rows]
        return RolloutBatch(prompt_ids, prompt_mask, ids, sampled, logprobs,
                            torch.tensor([r.truncated for r in rows], dtype=torch.bool), texts,
                            self.inner.weight_version, context_mask=context, transcripts=transcripts,
                            tool_records=[r.records for r in rows])


def with_tools(engine: Engine, tokenizer: Any, tools: Any, model: Any = None) -> Engine:
    """``engine`` itself, or wrapped in a `MultiTurnEngine` when ``rollout.tools`` offers tools or an environment
    (``tools``: the `rlvr.config.ToolsConfig` block; ``model``: the policy, for its context length)."""
    if not tools.enabled:
        return engine
    from rlvr.tools.env import build_environment

    inserter = Inserter(tokenizer, tools.response_format, tools.role)  # NoToolFormat: one line at start-up
    name = tools.env or "tools"
    if name == "tools":
        env = build_environment("tools", names=list(tools.names), call_format=tools.call_format,
                                max_calls=tools.max_calls, timeout_s=tools.timeout_s,
                                max_output_chars=tools.max_output_chars,
                                tool_options=_tool_options(tools))
    else:
        env = build_environment(name, **dict(tools.env_options))
    limit = tools.max_context_tokens or int(getattr(getattr(model, "config", None), "max_position_embeddings", 0) or 0)
    engine_limit = int(getattr(engine, "max_model_len", 0) or 0)  # vllm: what one sequence may hold there
    limit = min(limit, engine_limit) if limit and engine_limit else limit or engine_limit
    return MultiTurnEngine(engine, env, tokenizer, inserter, limit, tools.max_turns or 2 * tools.max_calls + 2)


def _tool_options(tools: Any) -> dict[str, dict[str, Any]]:
    options = {name: dict(value) for name, value in dict(tools.options).items()}
    python = options.setdefault("python", {})
    python.setdefault("stateful", tools.stateful)
    python.setdefault("workers", tools.workers)
    return options


def tool_metrics(batch: RolloutBatch, rewards: Optional[torch.Tensor] = None, prefix: str = "") -> dict[str, float]:
    """``tools/*`` of a multi-turn batch (nothing for a single-turn one): calls per completion; the error and
    timeout rates per call; execution seconds per call; the fraction of completion tokens that were inserted;
    and, with ``rewards``, the mean reward of the completions that made 0, 1, 2, 3+ calls."""
    if batch.tool_records is None or not len(batch):
        return {}
    records = [r for row in batch.tool_records for r in row]
    calls = [r for r in records if r.get("tool") is not None]
    n = len(batch)
    context = float(batch.context.sum())
    out = {"tools/calls_per_completion": len(calls) / n,
           "tools/error_rate": sum(r["status"] == "error" for r in records) / max(len(records), 1),
           "tools/timeout_rate": sum(r["status"] == "timeout" for r in records) / max(len(records), 1),
           "tools/exec_seconds": sum(r["seconds"] for r in calls) / max(len(calls), 1),
           "tools/inserted_frac": (context - float(batch.completion_mask.sum())) / max(context, 1.0)}
    if rewards is not None:
        per_row = [sum(r.get("tool") is not None for r in row) for row in batch.tool_records]
        for bucket in range(4):
            chosen = [i for i, c in enumerate(per_row) if (c >= 3 if bucket == 3 else c == bucket)]
            if chosen:
                label = "3+" if bucket == 3 else str(bucket)
                out[f"tools/reward_by_calls/{label}"] = float(rewards[chosen].float().mean())
    return {prefix + k: v for k, v in out.items()}
