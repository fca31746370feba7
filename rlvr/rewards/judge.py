"""LLM-judge reward sources (``kind: judge``): rubric items judged by a chat model, over HTTP or in-process.

The judge is either an OpenAI-compatible chat-completions endpoint (``options.base_url`` and
``options.model``: a local ``vllm serve``, or any hosted API; `rlvr.rewards.judge_http`), or a
local model served in-process by rlvr's own engines on the learner's device (``options.path``:
a Hugging Face directory, a checkpoint, a .gguf file or ``package:NAME``;
`rlvr.rewards.judge_local`). Exactly one of ``base_url`` and ``path`` is set. Both share the
prompts, parsers, cache, deadlines and verdicts below, and every mode.

**Modes** (``options.mode``; `rlvr.rewards.judge_modes`): ``pointwise`` sends each completion,
with its prompt and the rubric *items*, and reads one score block
(`rlvr.rewards.judge_prompt`): the reward is the items' weighted mean score scaled to [0, 1]
(``raw`` keeps the judge's 0-10 scale). ``group`` shows the judge the G completions of one
prompt at once and turns its ranking into rewards, ``(G - 1 - rank) / (G - 1)``, ties sharing
the mean of their ranks (`rlvr.rewards.judge_rank`); a group above ``max_group`` answers or
``max_group_chars`` characters becomes a tournament of pairs, and so does a group whose request
is ``too_long`` for an in-process judge (asked again as pairs in the same batch: only an answer
too long even for a pair is excluded). ``pairwise`` compares two
answers at a time (every pair of the group, or ``opponents`` seeded neighbours each) and an
answer's reward is its mean outcome (win 1, tie 0.5, loss 0). Positions are shuffled by a
seeded permutation per group (pair); ``recheck_fraction`` of them are asked again with the
order reversed, and the pairs whose order flips are ``judge/<label>/inconsistency``. A judge is
learned (the hacking watch and the gated mix treat it like a reward model) and never decides
pass/fail.

Options (``reward.sources[i].options``, or a rubric dimension's; typed by `JudgeOptions`,
unknown keys are errors at validation):

    base_url, model       the endpoint (``http://127.0.0.1:8000/v1``) and the served model name, or
    path                  a local judge model (engine, engine_options, batch_size, dtype: see the fields;
                          force_verdict: a group or pairwise reply with no verdict line is continued from
                          its own text after ``RANKING:`` / ``WINNER:``, so a small judge that compares in
                          prose still ends with a verdict; verdict: sample | logprob, how a pairwise
                          verdict is read, see Verdict probabilities)
    api_key_env           name of the environment variable holding the API key (the key itself
                          never goes in a config); null = no key
    items                 [{name, description, weight}] or names; a rubric dimension defaults to itself
    mode                  pointwise | group | pairwise (max_group, max_group_chars, opponents,
                          recheck_fraction, seed)
    response_format       text (a ``SCORES:`` / ``RANKING:`` / ``WINNER:`` line) | json (a JSON schema
                          the server enforces; in-process, the prompt asks for the JSON object) |
                          rubrics (a reasoning judge trained with data.source=judge_pairs: its own
                          prompt, a <verdict>; pairwise and group modes, a group judged as pairs)
    instruction           rubrics: the first line of the judge's prompt, set to the data.judge_pairs.instruction
                          it was trained with (null: that field's default), so it is asked as it was trained
    request_timeout_s, retries, backoff_s, max_concurrency, max_tokens, temperature, cache,
    cache_path, on_unreachable                                            (see the fields)

**Verdicts** (``verdict/<label>/<reason>`` in the metrics): ``scored``; ``parse_error`` (no
complete score block, ranking or winner), ``timeout`` (a request ran past its deadline),
``outage`` (connection errors / 5xx / 429 through every retry; in-process, an engine error),
``bad_response`` (4xx, malformed body), ``too_long`` (in-process: the request does not fit
the model's positions; a group request that does not is asked again as pairs, see Modes).
Every one but ``scored`` is *excluded*: the sample's ``applies`` is False, so it adds nothing
to the mix and nothing to ``reward/<label>/mean``, and it is counted.

**Verdict probabilities** (``verdict: logprob``, an in-process judge, text format): a pairwise
comparison's verdict is read from the judge's next-token probabilities rather than its sampled
letter. Its reply is cut before its last ``WINNER`` line (all of it when it has none) and
continued with ``WINNER:``; A's outcome is P(A) / (P(A) + P(B)) over the letters' tokens
(`rlvr.rewards.judge_rank.verdict_share`). Asked in both orders (``recheck_fraction: 1``), the
reward is the order-averaged preference, (P(X wins | X first) + P(X wins | X second)) / 2: a
judge that favours a position more than an answer lands near 0.5 instead of on a flip. Where
the letters hold under ``MIN_VERDICT_MASS`` (0.1) of the next token's probability the judge
gave no verdict: a ``parse_error``, excluded and counted as ever. Group rankings are still
sampled (``force_verdict`` still applies to them).

**A server that is down at start**: with ``on_unreachable: error`` (the default) validation
stops with one line naming the URL, before any model is built; with ``outage`` the run
starts and every sample the judge cannot reach is a counted ``outage``. A ``path`` that is no
model is one line at validation too.

**Cache**: verdicts persist in sqlite (`rlvr.rewards.judge_cache`), keyed by the request (its
messages: prompt, completions, items, shown order), the rubric version, the judge (endpoint and
model, or the local directory and its weight files' stamps), decoding and the prompts'
versions; a rerun of the same samples sends no request. Only ``scored`` and ``parse_error``
are cached: an in-process judge decodes greedily or seeded by each request, so it repeats them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Sequence

import torch

from rlvr.config import ConfigError
from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores
from rlvr.rewards.judge_cache import JudgeCache, cache_key, default_cache_path
from rlvr.rewards.judge_client import JudgeUnreachable, Reply
from rlvr.rewards.judge_http import HTTPJudge, chat_client
from rlvr.rewards.judge_modes import MODES, SCORED, ModeSettings, Request, Verdict, parse_reply, too_long_groups
from rlvr.rewards.judge_prompt import FORMATS, MAX_SCORE, PROMPT_VERSION, JudgeItem, parse_items, score_schema
from rlvr.rewards.judge_rank import (MIN_VERDICT_MASS, RANK_PROMPT_VERSION, RUBRICS, ranking_schema, verdict_prefix,
                                     winner_schema)

__all__ = ["JudgeOptions", "JudgeSource", "check_judge_source", "judge_options", "SCORED", "EXCLUDED"]

EXCLUDED = ("parse_error", "timeout", "outage", "bad_response", "too_long")  # left out of the mean, counted
VERDICTS = ("sample", "logprob")  # options.verdict
FORCE_CUES = {"pair": "\nWINNER:", "rank": "\nRANKING:"}  # options.force_verdict: what a reply is continued after
_CACHED = (SCORED, "parse_error")  # final verdicts (a deterministic judge repeats them); the rest are retried


@dataclass
class JudgeOptions:
    base_url: str = ""  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (this, or path)
    model: str = ""  # the served model name (required with base_url; unused with path)
    path: str = ""  # a local judge model run in-process: HF directory, checkpoint, .gguf or package:NAME (or base_url)
    engine: str = "hf"  # path: the registered rollout engine that generates its answers (hf | vllm)
    engine_options: dict[str, Any] = field(default_factory=dict)  # path: that engine's own fields (rollout.<engine>.*)
    batch_size: int = 8  # path: requests generated together (one chunk)
    dtype: Optional[str] = None  # path: bf16 | fp16 | fp32 | auto; null = the run's model.frozen_dtype, else model.dtype
    api_key_env: Optional[str] = None  # environment variable holding the API key; null = send none
    items: list[Any] = field(default_factory=list)  # rubric items: names or {name, description, weight}
    mode: str = "pointwise"  # pointwise: score each answer | group: rank a prompt's answers | pairwise: compare two
    max_group: int = 8  # group: larger groups are judged as a tournament of pairs
    max_group_chars: int = 16000  # group: a longer group request is judged as a tournament of pairs
    opponents: int = 0  # pairwise / tournament: 0 = every pair of a group; k = k seeded neighbours on each side
    recheck_fraction: float = 0.25  # group / pairwise: share of groups (pairs) asked again with positions reversed
    seed: int = 0  # group / pairwise: seeds the shown orders and which ones are re-checked
    response_format: str = "text"  # text: a SCORES/RANKING/WINNER line | json: a JSON object (server-enforced schema)
    #   | rubrics: a reasoning judge trained by rlvr (judge_pairs): its prompt, a <verdict> (pairwise, group as pairs)
    instruction: Optional[str] = None  # rubrics: the prompt's first line, the judge's training-time
    #   data.judge_pairs.instruction (its prompt is then byte for byte the training one); null = that field's default
    request_timeout_s: float = 30.0  # total deadline of one request (in-process: of one chunk); past it: `timeout`
    retries: int = 3  # retries after connection errors, HTTP 5xx and 429 (not after a timeout)
    backoff_s: float = 0.5  # first retry's wait, doubled each retry (at most 8 s)
    max_concurrency: int = 4  # requests in flight at once (HTTP)
    max_tokens: int = 512  # the judge's answer budget
    max_reason_chars: int = 300  # json format: the longest evaluation sentence per item (keeps answers in budget)
    force_verdict: bool = False  # path: a reply with no verdict line is continued from its own text after the cue
    #                             (RANKING: / WINNER:) for a few tokens, so a small judge that compares in prose
    #                             still ends with a parseable verdict (group and pairwise requests, text format)
    verdict: str = "sample"  # pairwise verdicts: sample (the letter the judge writes) | logprob (path, text format:
    #                          P(A) / (P(A) + P(B)) after "WINNER:", a soft outcome; see Verdict probabilities)
    temperature: float = 0.0  # the judge's sampling temperature (0 = greedy, cache-stable; in-process > 0 is seeded)
    cache: bool = True  # keep verdicts in the persistent cache
    cache_path: Optional[str] = None  # sqlite file; null = $RLVR_CACHE/judge/verdicts.sqlite
    on_unreachable: str = "error"  # a server that is down at start: error (stop at validation) | outage (count)
    rubric_version: Optional[str] = None  # set by the rubric this source comes from (part of the cache key)


def _endpoint_problems(opts: JudgeOptions) -> list[tuple[bool, str]]:
    either = "set exactly one of options.base_url (an HTTP endpoint) and options.path (a local judge model)"
    return [(bool(opts.base_url) == bool(opts.path), either),
            (bool(opts.base_url) and not opts.model, "set options.model to the served model name"),
            (bool(opts.path) and bool(opts.model), "options.model names a served model; with options.path leave it "
                                                   "unset"),
            (opts.batch_size < 1, "options.batch_size must be >= 1"),
            (opts.force_verdict and not opts.path, "options.force_verdict continues the judge's own text: it needs "
                                                   "an in-process judge (options.path)"),
            (opts.force_verdict and opts.response_format != "text", "options.force_verdict needs "
                                                                    "response_format: text"),
            (opts.verdict not in VERDICTS, f"options.verdict must be one of {', '.join(VERDICTS)}"),
            (opts.verdict == "logprob" and not opts.path, "options.verdict: logprob reads the judge's next-token "
                                                          "probabilities: it needs an in-process judge (options.path)"),
            (opts.verdict == "logprob" and opts.response_format != "text", "options.verdict: logprob needs "
                                                                           "response_format: text"),
            (opts.dtype not in (None, "auto", "fp32", "bf16", "fp16"), "options.dtype must be bf16, fp16, fp32, "
                                                                       "auto or null")]


def judge_options(where: str, options: dict[str, Any]) -> JudgeOptions:
    """Typed options; unknown keys, no endpoint or both, and bad values are a `ConfigError`."""
    valid = {f.name for f in fields(JudgeOptions)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown judge option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    opts = JudgeOptions(**options)
    problems = _endpoint_problems(opts) + [
        (opts.mode not in MODES, f"options.mode must be one of {', '.join(MODES)}"),
        (opts.response_format not in (*FORMATS, RUBRICS),
         f"options.response_format must be one of {', '.join(FORMATS)}, {RUBRICS}"),
        (opts.instruction is not None and opts.response_format != RUBRICS,
         "options.instruction is the first line of a trained reasoning judge's prompt: it needs "
         "response_format: rubrics (the other formats write their own prompt)"),
        (opts.instruction is not None and not opts.instruction.strip(), "options.instruction is empty: set the "
                                                                          "judge's data.judge_pairs.instruction"),
        (opts.response_format == RUBRICS and opts.mode == "pointwise",
         "options.response_format=rubrics (a trained reasoning judge) compares two answers: set options.mode to "
         "pairwise or group"),
        (opts.on_unreachable not in ("error", "outage"), "options.on_unreachable must be error or outage"),
        (opts.request_timeout_s <= 0, "options.request_timeout_s must be > 0"),
        (opts.max_concurrency < 1, "options.max_concurrency must be >= 1"),
        (opts.retries < 0 or opts.backoff_s < 0, "options.retries and backoff_s must be >= 0"),
        (opts.max_tokens < 1, "options.max_tokens must be >= 1"),
        (opts.max_group < 2 or opts.max_group_chars < 1, "options.max_group must be >= 2, max_group_chars >= 1"),
        (opts.opponents < 0, "options.opponents must be >= 0 (0 = every pair)"),
        (not 0.0 <= opts.recheck_fraction <= 1.0, "options.recheck_fraction must be in [0, 1]")]
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


def _probe(where: str, opts: JudgeOptions) -> None:
    if opts.path:
        _check_local(where, opts)
        return
    if opts.on_unreachable == "outage":
        return
    try:
        chat_client(opts).probe(min(5.0, opts.request_timeout_s))
    except (JudgeUnreachable, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_local(where: str, opts: JudgeOptions) -> None:
    """An in-process judge: a model at ``path``, a registered engine, and options that engine has."""
    from rlvr.config import RolloutConfig
    from rlvr.errors import UserError
    from rlvr.models import model_path_problem
    from rlvr.rollout import ENGINES

    problem = model_path_problem(opts.path, "options.path")
    if problem:
        raise ConfigError(f"{where} (kind judge): {problem}")
    try:
        ENGINES.check(opts.engine)
    except UserError as exc:
        raise ConfigError(f"{where} (kind judge): options.engine: {exc}") from None
    own = getattr(RolloutConfig(), opts.engine, None)  # the engine's config block, where it has one
    valid = {f.name for f in fields(own)} if own is not None else set()
    unknown = sorted(set(opts.engine_options) - valid)
    if unknown:
        raise ConfigError(f"{where} (kind judge): options.engine_options: unknown field(s) {', '.join(unknown)} of "
                          f"the {opts.engine} engine; valid: {', '.join(sorted(valid)) or 'none'}")


def check_judge_source(where: str, src: SourceConfig) -> None:
    """Validation of a judge source: typed options, items, the key's variable, the endpoint is up (or the model is
    there)."""
    opts = judge_options(where, dict(src.options))
    _items(where, opts, src.name)
    _probe(where, opts)


class JudgeSource:
    decides_pass = False
    learned = True

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        where = f"reward source {label!r}"
        self.opts = opts = judge_options(where, dict(cfg.options))
        self.items = _items(where, opts, cfg.name)
        _probe(where, opts)
        self.label, self.weight = label, cfg.weight
        self.settings = ModeSettings(self.items, opts.response_format, opts.seed, opts.recheck_fraction,
                                     opts.opponents, opts.max_group, opts.max_group_chars, opts.instruction)
        if opts.path:
            from rlvr.rewards.judge_local import LocalJudge

            self.transport: Any = LocalJudge(opts, label, ctx)
        else:
            self.transport = HTTPJudge(opts, label)
        self.cache = JudgeCache(opts.cache_path or default_cache_path()) if opts.cache else None
        self.counters = {"requests": 0, "cache_hits": 0, "cache_misses": 0}  # for benches and logs
        self._identity = {"prompt_version": PROMPT_VERSION, "rank_version": RANK_PROMPT_VERSION,
                          **self.transport.identity, "rubric": opts.rubric_version,
                          "items": [(i.name, i.description, i.weight) for i in self.items],
                          "format": opts.response_format, "temperature": opts.temperature,
                          "max_tokens": opts.max_tokens, "max_reason_chars": opts.max_reason_chars,
                          **({"force_verdict": True} if opts.force_verdict else {}),
                          **({"verdict": opts.verdict} if opts.verdict != "sample" else {})}
        schemas = {"score": ("rubric_scores", score_schema(self.items, opts.max_reason_chars)),
                   "rank": ("ranking", ranking_schema(opts.max_reason_chars)),
                   "pair": ("winner", winner_schema(opts.max_reason_chars))}
        self.extra = {kind: {"response_format": {"type": "json_schema", "json_schema": {
            "name": name, "schema": schema, "strict": True}}} for kind, (name, schema) in schemas.items()} \
            if opts.response_format == "json" and not opts.path else {}

    def key(self, request: Request) -> str:
        return cache_key({**self._identity, "kind": request.kind, "n": request.n, "messages": request.messages})

    def _verdict(self, request: Request, reply: Reply) -> tuple[str, Optional[dict[str, float]], str]:
        if reply.reason != "ok":
            return reply.reason, None, reply.detail
        payload = parse_reply(request, reply.text or "", self.items)
        return (SCORED if payload is not None else "parse_error"), payload, reply.text or ""

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        plan = MODES[self.opts.mode](self.settings, prompts, completions)
        sent = self.counters["requests"]
        keys, verdicts = self._ask(plan.requests, {})
        paired = too_long_groups(plan, [verdicts[k][0] for k in keys])
        if paired:  # a group beyond the judge's context: a tournament of pairs, the batch's other verdicts kept
            self._fallbacks(len(paired))
            plan = MODES[self.opts.mode](self.settings, prompts, completions, paired)
            keys, verdicts = self._ask(plan.requests, verdicts)
        rows = plan.combine([verdicts[k] for k in keys])
        rewards = torch.tensor(rows.rewards, dtype=torch.float32)
        applies = torch.tensor([r == SCORED for r in rows.reasons], dtype=torch.bool)
        rewards = torch.where(applies, rewards, torch.zeros_like(rewards))
        return SourceScores(rewards, rows.reasons, None, raw=rewards * MAX_SCORE, applies=applies,
                            consistency=torch.tensor(rows.consistency, dtype=torch.float32).reshape(-1, 2),
                            calls=self.counters["requests"] - sent)

    def _ask(self, requests: Sequence[Request], known: dict[str, Verdict]) -> tuple[list[str], dict[str, Verdict]]:
        """(each request's key, key -> verdict): ``known`` verdicts first, then the cache, then the judge."""
        keys = [self.key(r) for r in requests]
        verdicts = {k: known[k] for k in set(keys) if k in known}
        cached = self.cache.get_many([k for k in set(keys) if k not in verdicts]) if self.cache else {}
        self.counters["cache_hits"] += len(cached)
        verdicts.update(cached)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in verdicts and k not in first:  # identical requests in a batch are asked once
                first[k] = i
        jobs = [(i, requests[i].messages, self.extra.get(requests[i].kind)) for i in first.values()]
        self.counters["cache_misses"] += len(jobs)
        self.counters["requests"] += len(jobs)
        replies = self.transport.ask_all(jobs) if jobs else {}
        fresh = {keys[i]: self._verdict(requests[i], r) for i, r in replies.items()}
        if self.opts.verdict == "logprob":
            fresh.update(self._probabilities(requests, keys, replies))
        if self.opts.force_verdict:
            fresh.update(self._forced(requests, keys, replies, fresh))
        if self.cache:
            self.cache.put_many((k, *v) for k, v in fresh.items() if v[0] in _CACHED)
        verdicts.update(fresh)
        return keys, verdicts

    def _fallbacks(self, groups: int) -> None:
        """Count the groups judged as pairs because their group request was too long; say so the first time."""
        if "paired_fallbacks" not in self.counters:
            print(f"reward source {self.label!r}: a group request is too long for the judge's context: such groups "
                  f"are judged as a tournament of pairs (counted in the source's paired_fallbacks)", flush=True)
        self.counters["paired_fallbacks"] = self.counters.get("paired_fallbacks", 0) + groups

    def _forced(self, requests: Sequence[Request], keys: list[str], replies: dict[int, Reply],
                verdicts: dict[str, tuple[str, Optional[dict[str, float]], str]]
                ) -> dict[str, tuple[str, Optional[dict[str, float]], str]]:
        """Parse errors of group and pairwise requests, continued after their verdict cue and parsed again."""
        read = ("pair",) if self.opts.verdict == "logprob" else ()  # read from probabilities: never sampled again
        jobs = [(i, requests[i].messages, (replies[i].text or "").rstrip() + FORCE_CUES[requests[i].kind])
                for i in replies if verdicts[keys[i]][0] == "parse_error" and requests[i].kind in FORCE_CUES
                and requests[i].kind not in read]
        if not jobs:
            return {}
        self.counters["forced"] = self.counters.get("forced", 0) + len(jobs)
        return {keys[i]: self._verdict(requests[i], r) for i, r in self.transport.continue_all(jobs).items()}

    def _probabilities(self, requests: Sequence[Request], keys: list[str], replies: dict[int, Reply]
                       ) -> dict[str, tuple[str, Optional[dict[str, float]], str]]:
        """Pairwise replies' verdicts read from the judge's next-token probabilities after ``WINNER:``
        (``verdict: logprob``); a reply that failed (timeout, outage, too long) keeps its reason."""
        jobs = [(i, requests[i].messages, verdict_prefix(replies[i].text or "")) for i in replies
                if requests[i].kind == "pair" and replies[i].reason == "ok"]
        if not jobs:
            return {}
        shares = self.transport.verdict_shares(jobs)
        return {keys[i]: (SCORED, {"a": shares[i]}, f"{text} P(A)={shares[i]:.4f}") if shares.get(i) is not None
                else ("parse_error", None, f"{text} (P(A) + P(B) < {MIN_VERDICT_MASS})") for i, _, text in jobs}

    def close(self) -> None:
        self.transport.close()
        if self.cache is not None:
            self.cache.close()
