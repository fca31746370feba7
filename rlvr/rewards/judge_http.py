"""The judge's HTTP transport: chat requests to an OpenAI-compatible endpoint, in a thread pool, under deadlines.

`HTTPJudge.ask_all(jobs)` sends every job (its messages, and a server-enforced JSON schema in
the ``json`` format) through `rlvr.rewards.judge_client.ChatClient` in a pool of
``max_concurrency`` threads and returns one `Reply` per job: ``ok`` with the text, or
``timeout`` / ``outage`` / ``bad_response``. Every request has a total deadline, and the
batch a hard cap on top (`HTTPJudge.batch_deadline`), so no judge can hang a run; once one
request of a batch met an outage, the others skip their retries.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Optional, Sequence

from rlvr.rewards.judge_client import ChatClient, Reply

__all__ = ["HTTPJudge", "Job", "chat_client"]

Job = tuple[int, list[dict[str, str]], Optional[dict[str, Any]]]  # (index, messages, extra request fields)


def chat_client(opts: Any) -> ChatClient:
    key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
    return ChatClient(opts.base_url, opts.model, key, opts.request_timeout_s, opts.retries, opts.backoff_s)


class HTTPJudge:
    """Requests in flight at once: ``max_concurrency``; what decides a verdict goes into `identity`."""

    def __init__(self, opts: Any, label: str):
        self.opts = opts
        self.client = chat_client(opts)
        self.pool = ThreadPoolExecutor(max_workers=opts.max_concurrency, thread_name_prefix=f"judge-{label}")
        self._down = threading.Event()  # set once a request of the batch met an outage: skip the others' retries
        self.identity = {"endpoint": self.client.base_url, "model": opts.model}

    def _ask(self, messages: list[dict[str, str]], extra: Optional[dict[str, Any]]) -> Reply:
        reply = self.client.chat(messages, max_tokens=self.opts.max_tokens, temperature=self.opts.temperature,
                                 retry=not self._down.is_set(), extra=extra)
        if reply.reason == "outage":
            self._down.set()
        return reply

    def batch_deadline(self, n: int) -> float:
        """A hard cap on one batch's requests: every round of max_concurrency at its worst, plus slack."""
        o = self.opts
        per_sample = (o.retries + 1) * o.request_timeout_s + sum(min(8.0, o.backoff_s * 2 ** k) for k in range(o.retries))
        rounds = -(-n // o.max_concurrency)
        return time.monotonic() + rounds * per_sample + 5.0

    def ask_all(self, jobs: Sequence[Job]) -> dict[int, Reply]:
        self._down.clear()
        futures = {self.pool.submit(self._ask, messages, extra): i for i, messages, extra in jobs}
        deadline, pending, replies = self.batch_deadline(len(jobs)), set(futures), {}
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

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
