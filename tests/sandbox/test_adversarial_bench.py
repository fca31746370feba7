"""The attack bench judges each attack on its own: a fresh canary per attack, and any
change to it (or a file beside it) counts against that attack only."""
from __future__ import annotations

import re
import socket

from bench.sandbox_adversarial import attacks, judge
from sandbox import ExecResult

_WRITE = [i for i, a in enumerate(attacks("/x/canary.txt", 1)) if a.name == "write outside workdir"][0]
_SLEEP = [i for i, a in enumerate(attacks("/x/canary.txt", 1)) if a.name == "sleep"][0]


class _FakePool:
    """Stands in for a pool whose sandbox failed: 'runs' the attack by doing its damage
    directly (trusted test code; no attack program runs)."""

    _all: list = []

    def __init__(self, damage: bool) -> None:
        self.damage, self.canaries = damage, []

    def run(self, request) -> ExecResult:
        source = request.program.files["main.py"].decode()
        found = re.findall(r"'([^']*rlvr-canary-[^']*/canary\.txt)'", source)
        self.canaries += found
        if self.damage and found:
            with open(found[0], "w") as fh:
                fh.write("pwned")
        return ExecResult("runtime_error" if "open(" in source else "timeout")


def _server() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    return server


def test_an_overwritten_canary_fails_that_attack():
    with _server() as server:
        assert judge(_FakePool(damage=True), _WRITE, server)[2] is False


def test_an_intact_canary_and_expected_status_pass():
    with _server() as server:
        assert judge(_FakePool(damage=False), _WRITE, server)[2] is True


def test_each_attack_gets_its_own_canary():
    pool = _FakePool(damage=True)
    with _server() as server:
        judge(pool, _WRITE, server)
        judge(pool, _WRITE, server)
        assert judge(pool, _SLEEP, server)[2] is True  # the earlier damage does not spoil a later attack
    assert len(pool.canaries) == 2 and pool.canaries[0] != pool.canaries[1]
