"""The sandbox uid can import the interpreter's modules whatever the layers, or the pool
refuses to start naming the fix (issue 14, item 4)."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

from sandbox.runtime_access import unreachable

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_IMPORTS = "import socket, subprocess, json, collections, numpy\nprint(numpy.arange(4).sum(), socket.AF_UNIX.name)"
_POOL = (f"import sys; sys.path.insert(0, {_ROOT!r})\n"
         "from sandbox import ExecRequest, Program, SandboxPool\n"
         "with SandboxPool(workers=1, disable=('landlock', 'seccomp')) as pool:\n"
         "    r = pool.run(ExecRequest(Program('python', {'main.py': %r.encode()})))\n"
         "    print(r.status, repr(r.stdout), r.stderr[-400:])\n")


def _venv_in(directory: str) -> str:
    """A venv at ``directory`` whose site sees this environment's packages (numpy) by a .pth."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", directory], check=True, timeout=120)
    site = subprocess.run([os.path.join(directory, "bin", "python"), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "outer-site.pth"), "w") as fh:
        fh.write(sysconfig.get_path("purelib") + "\n")
    return os.path.join(directory, "bin", "python")


def _run_pool(python: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-W", "ignore", "-c", _POOL % _IMPORTS], capture_output=True, text=True,
                          timeout=120, cwd="/")


def test_imports_work_without_landlock_and_seccomp_with_the_interpreter_in_a_0700_directory(tmp_path):
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    out = _run_pool(_venv_in(str(private / "venv")))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok '6 AF_UNIX\\n'"), out.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root pool runs programs as another uid (drop_uid)")
def test_a_runtime_the_sandbox_uid_cannot_read_is_refused_at_pool_start_naming_the_fix(tmp_path):
    venv = tmp_path / "venv"
    python = _venv_in(str(venv))
    venv.chmod(0o700)  # the bound directory itself: no private root can open it for another uid
    out = _run_pool(python)
    assert out.returncode != 0 and "IsolationError" in out.stderr
    assert "cannot read the interpreter's modules" in out.stderr and "chmod o+rx" in out.stderr
    assert str(venv) in out.stderr


def test_nothing_is_checked_when_the_program_keeps_read_search():
    plan = frozenset({"drop_uid", "seccomp", "landlock"})
    assert unreachable(plan, ("/nonexistent/private",)) == []


def test_without_a_private_root_every_ancestor_must_let_others_in(tmp_path):
    inner = tmp_path / "a" / "lib"
    inner.mkdir(parents=True)
    (tmp_path / "a").chmod(0o700)
    problems = unreachable(frozenset({"drop_uid", "landlock"}), (str(inner),))
    assert any(str(tmp_path / "a") in p and "0700" in p for p in problems)
