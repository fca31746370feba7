"""Shared fixtures: one warm pool for the whole sandbox suite, and host-harm checks."""
from __future__ import annotations

import pytest

from sandbox import ExecRequest, Limits, SandboxPool
from tests.sandbox.support import leftovers, refused


@pytest.fixture(scope="session")
def pool():
    if refused():
        pytest.skip(f"sandbox refuses to run on this host: {refused()}")
    with SandboxPool(workers=2) as shared:
        yield shared
        assert leftovers(shared) == [], "sandboxed processes outlived the suite"


@pytest.fixture()
def run(pool):
    """``run(source, stdin=b"", **limits)`` -> ExecResult for a Python program; checks the host after."""
    worker_pids = {w.proc.pid for w in pool._all}

    def _run(source: str, stdin: bytes = b"", language: str = "python", **limits) -> object:
        prepared = pool.prepare(language, source)
        assert prepared.ok, prepared.compile_result
        return pool.run(ExecRequest(prepared.program, stdin=stdin, limits=Limits(**limits)))

    yield _run
    assert leftovers(pool) == []
    assert worker_pids <= {w.proc.pid for w in pool._all}, "a worker died during the test"
    assert all(w.proc.poll() is None for w in pool._all)


@pytest.fixture()
def outside():
    """A world-writable directory under /tmp whose every ancestor others may enter, so
    only the sandbox's own boundary (never a 0700 pytest directory) keeps a program out."""
    import pathlib
    import shutil
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp(prefix="rlvr-outside-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
