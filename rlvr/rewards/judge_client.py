"""A small OpenAI-compatible chat-completions client with hard deadlines (stdlib only).

`ChatClient.chat` never raises and never hangs: it returns a `Reply` whose ``reason`` is

    ok            the server answered 200 with a choice; ``text`` is its message content
    timeout       one attempt ran past ``timeout_s`` (connect + send + every read, in total); not retried
    outage        connection errors, HTTP 5xx or 429 persisted through ``retries`` retries
    bad_response  any other HTTP status (4xx), or a 200 whose body is not a chat completion

Retries back off exponentially (``backoff_s`` x 2^attempt, at most ``max_backoff_s``, or the
server's ``Retry-After`` when it sends a shorter one), so one sample costs at most
``(retries + 1) x timeout_s`` plus the back-off. Once a request of a batch has met an
outage, `chat(..., retry=False)` lets the caller skip the retries of the rest (a server
that is down costs one attempt per sample, not a full back-off each).

`ChatClient.probe` is the start-up check: ``GET {base_url}/models``; it raises
`JudgeUnreachable` naming the URL when nothing answers there, or when the server does
not serve the configured model.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlsplit

__all__ = ["ChatClient", "Reply", "JudgeUnreachable"]

_CHUNK = 65536


class JudgeUnreachable(RuntimeError):
    """The judge endpoint cannot be used; the message names the URL and the fix."""


@dataclass(frozen=True)
class Reply:
    text: Optional[str]  # the message content when reason == "ok"
    reason: str  # ok | timeout | outage | bad_response
    attempts: int = 1  # requests sent
    detail: str = ""  # what went wrong (status, exception), for logs


class _Retryable(Exception):
    def __init__(self, detail: str, retry_after: Optional[float] = None):
        super().__init__(detail)
        self.retry_after = retry_after


class _Deadline(Exception):
    pass


class _Bad(Exception):
    pass


class ChatClient:
    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, timeout_s: float = 30.0,
                 retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url={base_url!r}: use http://host:port/v1 (or https://...)")
        self.base_url, self.model, self.api_key = base_url.rstrip("/"), model, api_key
        self.scheme, self.host, self.port, self.prefix = parts.scheme, parts.hostname, parts.port, parts.path
        self.timeout_s, self.retries, self.backoff_s, self.max_backoff_s = timeout_s, retries, backoff_s, max_backoff_s

    # ---- one HTTP exchange under a total deadline ------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _exchange(self, method: str, path: str, body: Optional[bytes], timeout_s: float) -> tuple[int, bytes, Any]:
        """(status, body, headers); raises _Deadline past ``timeout_s`` in total, OSError on connection errors."""
        deadline = time.monotonic() + timeout_s

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Deadline()
            return left

        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=remaining())
        try:
            conn.request(method, self.prefix + path, body=body, headers=self._headers())
            sock = conn.sock  # the response keeps reading from it even when the connection lets go of it
            sock.settimeout(remaining())
            response = conn.getresponse()
            chunks = []
            while not response.isclosed():  # it closes itself (and the socket) once the body is read
                sock.settimeout(remaining())
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
            return response.status, b"".join(chunks), response.headers
        except socket.timeout:
            raise _Deadline() from None
        finally:
            conn.close()

    def _attempt(self, payload: bytes) -> str:
        try:
            status, body, headers = self._exchange("POST", "/chat/completions", payload, self.timeout_s)
        except (_Deadline, TimeoutError):
            raise _Deadline() from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, closed mid-answer
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", _retry_after(headers))
        if status != 200:
            raise _Bad(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Bad(f"not a chat completion: {body[:200].decode('utf-8', 'replace')}") from None
        return content if isinstance(content, str) else ""

    def chat(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 512, temperature: float = 0.0,
             retry: bool = True, extra: Optional[Mapping[str, Any]] = None) -> Reply:
        """One chat completion; never raises, never runs past its deadlines (see the module docstring)."""
        payload = json.dumps({"model": self.model, "messages": list(messages), "max_tokens": max_tokens,
                              "temperature": temperature, **(extra or {})}).encode()
        tries = 1 + (self.retries if retry else 0)
        detail = ""
        for attempt in range(tries):
            try:
                return Reply(self._attempt(payload), "ok", attempt + 1)
            except _Deadline:
                return Reply(None, "timeout", attempt + 1, f"no answer within {self.timeout_s:g} s")
            except _Bad as exc:
                return Reply(None, "bad_response", attempt + 1, str(exc))
            except _Retryable as exc:
                detail = str(exc)
                if attempt + 1 < tries:
                    wait = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
                    time.sleep(min(wait, exc.retry_after) if exc.retry_after is not None else wait)
        return Reply(None, "outage", tries, detail)

    def probe(self, timeout_s: float = 5.0) -> list[str]:
        """The served model names (GET /models); `JudgeUnreachable` when the endpoint cannot be used."""
        url = f"{self.base_url}/models"
        try:
            status, body, _ = self._exchange("GET", "/models", None, timeout_s)
        except (_Deadline, TimeoutError):
            raise JudgeUnreachable(f"judge endpoint {url} did not answer within {timeout_s:g} s; check that the "
                                   f"server is up, or set the judge's options.on_unreachable=outage") from None
        except (OSError, http.client.HTTPException) as exc:
            raise JudgeUnreachable(f"judge endpoint {url} is not reachable ({type(exc).__name__}: {exc}); start "
                                   f"the server (e.g. vllm serve MODEL --port PORT) or fix options.base_url, "
                                   f"or set options.on_unreachable=outage") from None
        if status in (401, 403):
            raise JudgeUnreachable(f"judge endpoint {url} refused the API key (HTTP {status}); set options."
                                   f"api_key_env to the name of the variable that holds the key")
        if status != 200:
            return []  # a server without a model list: the first request tells
        try:
            served = [str(m["id"]) for m in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError):
            return []
        if served and self.model not in served:
            raise JudgeUnreachable(f"judge endpoint {self.base_url} does not serve model {self.model!r}; it serves "
                                   f"{', '.join(served)}; set options.model")
        return served


def _retry_after(headers: Any) -> Optional[float]:
    try:
        return max(0.0, float(headers.get("Retry-After"))) if headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None
