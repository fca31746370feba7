"""Run a Python command as an unprivileged uid, for the "not root" row of the matrix.

    python tests/sandbox/unprivileged.py UID -- -c "..."     # started as root

A test running as root cannot become an ordinary user directly when the interpreter
lives under a 0700 home (``/root/.pyenv``): the new uid could not even start it. So
this helper, in a mount namespace of its own, lays a 0755 tmpfs over each directory
on the way that the uid cannot enter, with only the needed subdirectories bound back
(nothing on the host changes), then drops every privilege (groups, gid, uid, so no
capabilities are left) and ``exec``s the interpreter. Only trusted test code runs as
that uid; attack code runs only inside the sandbox it starts, which as a non-root
user requires a user and a PID namespace (``isolation.refusal``).
"""
from __future__ import annotations

import os
import stat
import sys
import sysconfig

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, _ROOT)

from sandbox import _syscalls as sc  # noqa: E402


def _needed() -> list[str]:
    paths = {sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)}
    paths |= {p for p in sys.path if os.path.isabs(p) and os.path.exists(p)}
    paths.add(_ROOT)  # the checkout the command imports from, wherever CI cloned it
    return sorted(os.path.realpath(p) for p in paths if p)


def _blocked_ancestors(paths: list[str]) -> dict[str, set[str]]:
    """Directory others cannot enter -> its children that must stay reachable (every
    such level of every path; ``_expose`` handles them from the top down)."""
    blocked: dict[str, set[str]] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                blocked.setdefault(parent, set()).add(parent + "/" + parts[i])
    return blocked


def _expose(blocked: dict[str, set[str]]) -> None:
    holder = os.path.join("/tmp", f"rlvr-unpriv-{os.getpid()}")
    os.makedirs(holder, exist_ok=True)
    sc.mount("tmpfs", holder, "tmpfs", sc.MS_NOSUID, "size=1m,mode=0700")
    for n, (parent, children) in enumerate(sorted(blocked.items(), key=lambda kv: kv[0].count("/"))):
        kept = []
        for m, child in enumerate(sorted(children)):
            spot = os.path.join(holder, f"{n}-{m}")
            os.mkdir(spot)
            sc.mount(child, spot, None, sc.MS_BIND | sc.MS_REC)
            kept.append((spot, child))
        sc.mount("tmpfs", parent, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,mode=0755")
        for spot, child in kept:
            os.mkdir(child, 0o755)
            sc.mount(spot, child, None, sc.MS_BIND | sc.MS_REC)
    sc.umount(holder)  # the binds made from it stay; the staging directory goes
    os.rmdir(holder)


def main() -> None:
    uid, args = int(sys.argv[1]), sys.argv[sys.argv.index("--") + 1:]
    if os.geteuid() != 0:
        raise SystemExit("start this helper as root")
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    _expose(_blocked_ancestors(_needed()))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.environ["HOME"] = "/tmp"
    os.execv(sys.executable, [sys.executable] + args)


if __name__ == "__main__":
    main()
