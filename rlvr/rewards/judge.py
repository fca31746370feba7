"""LLM-judge reward sources (``kind: judge``): rubric items scored by a chat model over HTTP.

Each completion is sent, with its prompt and the source's rubric *items*, to an
OpenAI-compatible chat-completions endpoint (a local ``vllm serve``, or any hosted API);
the judge states the criteria, evaluates each, then emits a score block
(`rlvr.rewards.judge_prompt`). The source's reward is the items' weighted mean score,
scaled to [0, 1] (``raw`` keeps it on the judge's 0-10 scale). A judge is learned (the
hacking watch and the gated mix treat it like a reward model) and never decides pass/fail.

Options (``reward.sources[i].options``, or a rubric dimension's; typed by `JudgeOptions`,
unknown keys are errors at validation):

    base_url, model       the endpoint (``http://127.0.0.1:8000/v1``) and the served model name
    api_key_env           name of the environment variable holding the API key (the key itself
                          never goes in a config); null = no key
    items                 [{name, description, weight}] or names; a rubric dimension defaults to itself
    response_format       text (a ``SCORES:`` line) | json (a JSON schema the server enforces)
    request_timeout_s, retries, backoff_s, max_concurrency, max_tokens, temperature, cache,
    cache_path, on_unreachable                                            (see the fields)

**Verdicts** (``verdict/<label>/<reason>`` in the metrics): ``scored``; ``parse_error`` (no
complete score block), ``timeout`` (a request ran past ``request_timeout_s``), ``outage``
(connection errors / 5xx / 429 through every retry), ``bad_response`` (4xx, malformed
body). Every one but ``scored`` is *excluded*: the sample's ``applies`` is False, so it
adds nothing to the mix and nothing to ``reward/<label>/mean``, and it is counted.

**A server that is down at start**: with ``on_unreachable: error`` (the default) validation
stops with one line naming the URL, before any model is built; with ``outage`` the run
starts and every sample the judge cannot reach is a counted ``outage``. Requests run in a
thread pool of ``max_concurrency``; every request has a total deadline, and the batch a
hard cap on top (`_batch_deadline`), so no judge can hang a run.

**Cache**: verdicts persist in sqlite (`rlvr.rewards.judge_cache`), keyed by (prompt,
completion, rubric version, judge model + endpoint, decoding, prompt version); a rerun of
the same samples sends no request.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Sequence

import torch

from rlvr.config import ConfigError
from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores
from rlvr.rewards.judge_cache import JudgeCache, cache_key, default_cache_path
from rlvr.rewards.judge_client import ChatClient, JudgeUnreachable, Reply
from rlvr.rewards.judge_prompt import (FORMATS, MAX_SCORE, PROMPT_VERSION, JudgeItem, judge_messages, parse_items,
                                       parse_scores, score_schema, weighted_score)

__all__ = ["JudgeOptions", "JudgeSource", "check_judge_source", "judge_options", "SCORED", "EXCLUDED"]

SCORED = "scored"
EXCLUDED = ("parse_error", "timeout", "outage", "bad_response")  # verdicts left out of the mean, counted
_CACHED = (SCORED, "parse_error")  # final verdicts (a deterministic judge repeats them); the rest are retried


@dataclass
class JudgeOptions:
    base_url: str = ""  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (required)
    model: str = ""  # the served model name (required)
    api_key_env: Optional[str] = None  # environment variable holding the API key; null = send none
    items: list[Any] = field(default_factory=list)  # rubric items: names or {name, description, weight}
    response_format: str = "text"  # text: a SCORES line | json: a server-enforced JSON schema (vLLM, OpenAI)
    request_timeout_s: float = 30.0  # total deadline of one request (connect + answer); past it: `timeout`
    retries: int = 3  # retries after connection errors, HTTP 5xx and 429 (not after a timeout)
    backoff_s: float = 0.5  # first retry's wait, doubled each retry (at most 8 s)
    max_concurrency: int = 4  # requests in flight at once
    max_tokens: int = 512  # the judge's answer budget
    max_reason_chars: int = 300  # json format: the longest evaluation sentence per item (keeps answers in budget)
    temperature: float = 0.0  # the judge's sampling temperature (0 = greedy, cache-stable)
    cache: bool = True  # keep verdicts in the persistent cache
    cache_path: Optional[str] = None  # sqlite file; null = $RLVR_CACHE/judge/verdicts.sqlite
    on_unreachable: str = "error"  # a server that is down at start: error (stop at validation) | outage (count)
    rubric_version: Optional[str] = None  # set by the rubric this source comes from (part of the cache key)


def judge_options(where: str, options: dict[str, Any]) -> JudgeOptions:
    """Typed options; unknown keys, missing endpoint/model and bad values are a `ConfigError`."""
    valid = {f.name for f in fields(JudgeOptions)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown judge option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    opts = JudgeOptions(**options)
    problems = [(not opts.base_url, "set options.base_url (e.g. http://127.0.0.1:8000/v1)"),
                (not opts.model, "set options.model to the served model name"),
                (opts.response_format not in FORMATS, f"options.response_format must be one of {', '.join(FORMATS)}"),
                (opts.on_unreachable not in ("error", "outage"), "options.on_unreachable must be error or outage"),
                (opts.request_timeout_s <= 0, "options.request_timeout_s must be > 0"),
                (opts.max_concurrency < 1, "options.max_concurrency must be >= 1"),
                (opts.retries < 0 or opts.backoff_s < 0, "options.retries and backoff_s must be >= 0"),
                (opts.max_tokens < 1, "options.max_tokens must be >= 1")]
    for bad, fix in problems:
        if bad:
            raise ConfigError(f"{where} (kind judge): {fix}")
    if opts.api_key_env and opts.api_key_env not in os.environ:
        raise ConfigError(f"{where} (kind judge): options.api_key_env names {opts.api_key_env}, which is not set; "
                          f"export it (the key never goes in a config), or set api_key_env: null")
    return opts


def _items(where: str, opts: JudgeOptions, label: str) -> tuple[JudgeItem, ...]:
    try:
        return parse_items(opts.items, label)
    except ValueError as exc:
        raise ConfigError(f"{where} (kind judge): options.items: {exc}") from None


def _client(opts: JudgeOptions) -> ChatClient:
    key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
    return ChatClient(opts.base_url, opts.model, key, opts.request_timeout_s, opts.retries, opts.backoff_s)


def _probe(where: str, opts: JudgeOptions) -> None:
    if opts.on_unreachable == "outage":
        return
    try:
        _client(opts).probe(min(5.0, opts.request_timeout_s))
    except (JudgeUnreachable, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_judge_source(where: str, src: SourceConfig) -> None:
    """Validation of a judge source: typed options, items, the key's variable, and the endpoint is up."""
    opts = judge_options(where, dict(src.options))
    _items(where, opts, src.name)
    _probe(where, opts)


class JudgeSource:
    decides_pass = False
    learned = True

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        where = f"reward source {label!r}"
        self.opts = judge_options(where, dict(cfg.options))
        self.items = _items(where, self.opts, cfg.name)
        _probe(where, self.opts)
        self.label, self.weight = label, cfg.weight
        self.client = _client(self.opts)
        self.cache = JudgeCache(self.opts.cache_path or default_cache_path()) if self.opts.cache else None
        self.pool = ThreadPoolExecutor(max_workers=self.opts.max_concurrency, thread_name_prefix=f"judge-{label}")
        self.counters = {"requests": 0, "cache_hits": 0, "cache_misses": 0}  # for benches and logs
        self._down = threading.Event()  # set once a request of the batch met an outage: skip the others' retries
        self._identity = {"prompt_version": PROMPT_VERSION, "endpoint": self.client.base_url, "model": self.opts.model,
                          "rubric": self.opts.rubric_version,
                          "items": [(i.name, i.description, i.weight) for i in self.items],
                          "format": self.opts.response_format, "temperature": self.opts.temperature,
                          "max_tokens": self.opts.max_tokens, "max_reason_chars": self.opts.max_reason_chars}
        self.extra = None
        if self.opts.response_format == "json":
            self.extra = {"response_format": {"type": "json_schema", "json_schema": {
                "name": "rubric_scores", "schema": score_schema(self.items, self.opts.max_reason_chars), "strict": True}}}

    def key(self, prompt: Prompt, completion: str) -> str:
        return cache_key({**self._identity, "messages": [dict(m) for m in prompt.messages], "completion": completion})

    def _ask(self, prompt: Prompt, completion: str) -> Reply:
        messages = judge_messages(self.items, prompt.messages, completion, self.opts.response_format)
        reply = self.client.chat(messages, max_tokens=self.opts.max_tokens, temperature=self.opts.temperature,
                                 retry=not self._down.is_set(), extra=self.extra)
        if reply.reason == "outage":
            self._down.set()
        return reply

    def _batch_deadline(self, n: int) -> float:
        """A hard cap on one batch's requests: every round of max_concurrency at its worst, plus slack."""
        o = self.opts
        per_sample = (o.retries + 1) * o.request_timeout_s + sum(min(8.0, o.backoff_s * 2 ** k) for k in range(o.retries))
        rounds = -(-n // o.max_concurrency)
        return time.monotonic() + rounds * per_sample + 5.0

    def _request_all(self, jobs: list[tuple[int, Prompt, str]]) -> dict[int, Reply]:
        self._down.clear()
        futures = {self.pool.submit(self._ask, p, c): i for i, p, c in jobs}
        self.counters["requests"] += len(jobs)
        deadline, pending, replies = self._batch_deadline(len(jobs)), set(futures), {}
        while pending:
            done, pending = wait(pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            for future in done:
                replies[futures[future]] = future.result()
            if not done:  # past the cap: whatever is still running is a timeout (its thread ends on its own deadline)
                for future in pending:
                    future.cancel()
                    replies[futures[future]] = Reply(None, "timeout", 1, "past the batch's hard deadline")
                break
        return replies

    def _verdict(self, reply: Reply) -> tuple[str, Optional[dict[str, float]], str]:
        if reply.reason != "ok":
            return reply.reason, None, reply.detail
        scores = parse_scores(reply.text or "", self.items)
        return (SCORED if scores is not None else "parse_error"), scores, reply.text or ""

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        keys = [self.key(p, c) for p, c in zip(prompts, completions)]
        verdicts = self.cache.get_many(keys) if self.cache else {}
        hits = sum(k in verdicts for k in set(keys))
        jobs, first = [], {}
        for i, (k, p, c) in enumerate(zip(keys, prompts, completions)):
            if k not in verdicts and k not in first:  # identical samples in a batch are asked once
                first[k] = i
                jobs.append((i, p, c))
        self.counters["cache_hits"] += hits
        self.counters["cache_misses"] += len(jobs)
        fresh = {keys[i]: self._verdict(r) for i, r in self._request_all(jobs).items()} if jobs else {}
        if self.cache:
            self.cache.put_many((k, *v) for k, v in fresh.items() if v[0] in _CACHED)
        verdicts.update(fresh)
        return self._scores([verdicts[k] for k in keys])

    def _scores(self, verdicts: list[tuple[str, Optional[dict[str, float]], str]]) -> SourceScores:
        rewards = torch.zeros(len(verdicts), dtype=torch.float32)
        for i, (reason, scores, _) in enumerate(verdicts):
            if reason == SCORED and scores is not None:
                rewards[i] = weighted_score(scores, self.items)
        applies = torch.tensor([v[0] == SCORED for v in verdicts], dtype=torch.bool)
        return SourceScores(rewards, [v[0] for v in verdicts], None, raw=rewards * MAX_SCORE, applies=applies)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.cache is not None:
            self.cache.close()
