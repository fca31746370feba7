"""Can the sandbox uid import the interpreter's modules? Checked once, at pool start.

A warm worker imports ``sandbox`` and a few standard modules itself, but a program's
own ``import socket`` or ``import numpy`` happens after the fork, as the sandbox uid.
When the interpreter lives under a directory that uid cannot enter (``/root`` is
0700; so are many home directories), every such import fails and every program ends
as a ``runtime_error``: a silent collapse of every reward. This module finds that
before any program runs, so the pool refuses to start with the fix named instead.

The program's view of each import directory depends on the layers in force:

- with ``drop_uid``, seccomp and a filesystem boundary (Landlock or the private
  root), the program keeps CAP_DAC_READ_SEARCH: it can read them whatever their modes;
- with the private root (``fsroot``), the directories *above* each bound directory
  are recreated with mode 0755, so only the bound directories' own modes matter;
- otherwise every directory on the way must let "other" in (search, plus read for
  the import directory itself).

In a user namespace (not root) the program is the calling user, who started the
worker from the same interpreter, so nothing is checked there.
"""
from __future__ import annotations

import os
import stat

from sandbox import fsroot
from sandbox._processes import keeps_read_search
from sandbox.languages import DEVICES, python_import_dirs, runtime_paths

__all__ = ["unreachable", "refusal_text"]


def _blocked(directory: str, need_read: bool) -> str | None:
    try:
        st = os.stat(directory)
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    need = stat.S_IXOTH | (stat.S_IROTH if need_read else 0)
    if st.st_mode & need != need:
        return f"{directory} (mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid})"
    return None


def _chain(path: str, top: str) -> list[str]:
    """``top`` and every directory from it down to ``path``."""
    chain, current = [], path
    while True:
        chain.append(current)
        if current == top or current == "/":
            break
        current = os.path.dirname(current)
    return chain[::-1]


def unreachable(plan: frozenset[str], import_dirs: tuple[str, ...] | None = None) -> list[str]:
    """Directories that keep the sandbox uid from the interpreter's import directories."""
    if "drop_uid" not in plan or keeps_read_search(plan):
        return []
    dirs = python_import_dirs() if import_dirs is None else import_dirs
    binds = fsroot.plan_binds(runtime_paths(), DEVICES)[0] if "fsroot" in plan else []
    problems: list[str] = []
    for directory in dirs:
        real = os.path.realpath(directory)
        top = next((b for b in binds if real == b or real.startswith(b.rstrip("/") + "/")), "/")
        for step in _chain(real, top):
            problem = _blocked(step, need_read=step == real)
            if problem and problem not in problems:
                problems.append(problem)
    return problems


def refusal_text(problems: list[str]) -> str:
    return ("refusing to start: the sandbox uid cannot read the interpreter's modules, so every program "
            "importing them would fail; blocked at " + "; ".join(problems[:4]) +
            ". Fix: make those directories reachable (chmod o+rx on each), install the environment under a "
            "world-readable directory, or keep the seccomp layer on together with Landlock or fsroot "
            "(the sandbox then keeps CAP_DAC_READ_SEARCH)")
