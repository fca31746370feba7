"""The judge in-process: a local model served through rlvr's own rollout engines, on the learner's device.

``options.path`` names the judge model as ``model.path`` does elsewhere: a Hugging Face
directory (a trained reasoning reward model, or any instruct model), a LoRA checkpoint
(merged onto its base once, into ``$RLVR_CACHE``), a .gguf file or ``package:NAME``.
It loads as a frozen model (``options.dtype``, else the run's ``model.frozen_dtype``,
else ``model.dtype``; fp16 on a CPU is refused), and ``options.engine`` (a registered
rollout engine: ``hf``, or ``vllm`` where installed; ``engine_options`` are that engine's
own fields, ``rollout.<engine>.*``) generates its answers:

- requests are rendered by the judge tokenizer's chat template (plain text joined by blank
  lines without one) and generated in chunks of ``batch_size``;
- ``temperature: 0`` decodes greedily; otherwise every request is seeded by its own content,
  so a rerun writes the same answer either way and the verdict cache stays valid;
- a request longer than the model's positions minus ``max_tokens`` is ``too_long``; an
  engine error is an ``outage`` (both excluded and counted, neither cached);
- **deadline**: a batch may take ``request_timeout_s`` per chunk; chunks that would start
  after that are ``timeout`` (a chunk already generating runs to its end, bounded by
  ``max_tokens``: a model on the learner's device cannot be abandoned mid-step safely);
- ``verdict: logprob``: `LocalJudge.verdict_shares` runs the frozen model once over each
  pairwise reply cut at its ``WINNER:`` cue and reads the next token's probabilities of the
  letters A and B (the tokens ``A`` and `` A``, ``B`` and `` B`` that are one token each).

`LocalJudge.ask_all` has the HTTP transport's contract (`rlvr.rewards.judge_http`): one
`Reply` per job, never an exception.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from rlvr.config import ConfigError
from rlvr.rewards.base import SourceContext
from rlvr.rewards.judge_client import Reply
from rlvr.rewards.judge_http import Job

__all__ = ["LocalJudge", "local_cache_dir", "weights_stamp"]


def local_cache_dir() -> Path:
    """Where merged or imported judge models go (``model.cache_dir``'s default)."""
    return Path(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")))


def weights_stamp(path: Path) -> list[Any]:
    """Name, size and mtime of the directory's weight files: a retrained judge in the same place is a new judge."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".json") and p.is_file())
    return [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]


def _seed(messages: list[dict[str, str]]) -> int:
    return int(hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:15], 16)


_FORCED_TOKENS = 32  # options.force_verdict: room for "A", "B", "TIE" or a ranking of 8 after the cue


class LocalJudge:
    def __init__(self, opts: Any, label: str, ctx: SourceContext):
        from rlvr.models import load_model, load_tokenizer, resolve_model_dir
        from rlvr.rewards.model_checkpoint import frozen_dtype, read_model_config, refuse_fp16_on_cpu
        from rlvr.rollout import build_engine

        where = f"reward source {label!r}"
        self.opts, self.device = opts, ctx.device
        path = resolve_model_dir(opts.path, local_cache_dir(), what="options.path")
        dtype, why = frozen_dtype(opts.dtype, ctx.dtype, read_model_config(path))
        refuse_fp16_on_cpu(where, dtype, why, self.device.type)
        self.tokenizer = load_tokenizer(path)
        self.model = model = load_model(path, dtype).to(self.device).eval().requires_grad_(False)
        self.positions = int(getattr(model.config, "max_position_embeddings", 0) or 10 ** 9)
        try:
            self.engine = build_engine(opts.engine, model, self.tokenizer, model_dir=str(path), seed=0,
                                       **opts.engine_options)
        except TypeError as exc:
            raise ConfigError(f"{where}: options.engine_options: {exc}") from None
        self.positions = min(self.positions, int(getattr(self.engine, "max_model_len", self.positions)))
        self.identity = {"endpoint": f"local:{path.resolve()}", "weights": weights_stamp(path), "dtype": dtype,
                         "engine": opts.engine}
        print(f"{where}: judge in-process: {path} through the {opts.engine} engine on {self.device}, {dtype} ({why}), "
              f"chunks of {opts.batch_size}, {'greedy' if opts.temperature == 0 else 'seeded by each request'}",
              flush=True)

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            from rlvr.data.chat import chat_texts

            text = chat_texts(self.tokenizer, [messages], True)[0]
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer("\n\n".join(m["content"] for m in messages) + "\n\n")["input_ids"]

    def _generate(self, chunk: Sequence[tuple[int, list[int], int]]) -> dict[int, Reply]:
        from rlvr.rollout import SamplingParams

        o = self.opts
        params = SamplingParams(n=1, temperature=o.temperature if o.temperature > 0 else 1.0,
                                max_new_tokens=o.max_tokens, greedy=o.temperature == 0)
        try:
            batch = self.engine.generate([ids for _, ids, _ in chunk], params, seeds=[s for _, _, s in chunk])
        except (RuntimeError, ValueError) as exc:  # out of memory, an engine refusing the request
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return {i: Reply(None, "outage", 1, detail) for i, _, _ in chunk}
        return {i: Reply(text, "ok") for (i, _, _), text in zip(chunk, batch.texts)}

    def ask_all(self, jobs: Sequence[Job]) -> dict[int, Reply]:
        replies: dict[int, Reply] = {}
        ready = []
        for i, messages, _ in jobs:
            ids = self._encode(messages)
            if len(ids) + self.opts.max_tokens > self.positions:
                replies[i] = Reply(None, "too_long", 1, f"{len(ids)} prompt tokens + max_tokens {self.opts.max_tokens}"
                                                         f" > the model's {self.positions} positions")
            else:
                ready.append((i, ids, _seed(messages)))
        size = max(1, self.opts.batch_size)
        chunks = [ready[k:k + size] for k in range(0, len(ready), size)]
        deadline = time.monotonic() + self.opts.request_timeout_s * len(chunks)
        for chunk in chunks:
            if time.monotonic() > deadline:
                replies.update({i: Reply(None, "timeout", 0, "past the batch's deadline") for i, _, _ in chunk})
            else:
                replies.update(self._generate(chunk))
        return replies

    def continue_all(self, jobs: Sequence[tuple[int, list[dict[str, str]], str]]) -> dict[int, Reply]:
        """Each request's own reply so far (ending with a verdict cue) continued greedily for a few tokens; the
        reply is the whole text. `options.force_verdict`."""
        from rlvr.rollout import SamplingParams

        params = SamplingParams(n=1, temperature=1.0, max_new_tokens=_FORCED_TOKENS, greedy=True)
        out: dict[int, Reply] = {}
        ready = [(i, self._encode(m) + self.tokenizer(text, add_special_tokens=False)["input_ids"], text)
                 for i, m, text in jobs]
        size = max(1, self.opts.batch_size)
        for k in range(0, len(ready), size):
            chunk = [r for r in ready[k:k + size] if len(r[1]) + _FORCED_TOKENS <= self.positions]
            out.update({i: Reply(text, "ok") for i, _, text in ready[k:k + size] if all(i != c[0] for c in chunk)})
            if not chunk:
                continue
            try:
                batch = self.engine.generate([ids for _, ids, _ in chunk], params, seeds=[0] * len(chunk))
            except (RuntimeError, ValueError):
                out.update({i: Reply(text, "ok") for i, _, text in chunk})
                continue
            out.update({i: Reply(text + more, "ok") for (i, _, text), more in zip(chunk, batch.texts)})
        return out

    def _letter_ids(self) -> tuple[list[int], list[int]]:
        """The token ids of ``A`` / `` A`` and ``B`` / `` B`` that are a single token each."""
        def ids(letter: str) -> list[int]:
            out = [self.tokenizer(v, add_special_tokens=False)["input_ids"] for v in (letter, " " + letter)]
            return sorted({t[0] for t in out if len(t) == 1})
        a, b = ids("A"), ids("B")
        if not a or not b:
            raise ConfigError("options.verdict: logprob: the judge's tokenizer has no single token for the letter A "
                              "or B; use verdict: sample")
        return a, b

    def verdict_shares(self, jobs: Sequence[tuple[int, list[dict[str, str]], str]]) -> dict[int, Any]:
        """Each request's reply so far (ending with ``WINNER:``) -> P(A) / (P(A) + P(B)) of the next token, or None
        (the letters hold under `MIN_VERDICT_MASS`, the text does not fit the model, or the model failed)."""
        import torch

        from rlvr.rewards.judge_rank import verdict_share

        a_ids, b_ids = self._letter_ids()
        out: dict[int, Any] = {}
        for i, messages, text in jobs:
            ids = self._encode(messages) + self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) > self.positions:
                out[i] = None
                continue
            try:
                with torch.no_grad():
                    logits = self.model(torch.tensor([ids], device=self.device)).logits[0, -1]
            except (RuntimeError, ValueError):
                out[i] = None
                continue
            out[i] = verdict_share(torch.softmax(logits.float(), dim=-1).tolist(), a_ids, b_ids)
        return out

    def close(self) -> None:
        self.engine.close()
