"""cgroup v2 limits where a delegated cgroup exists, rlimits otherwise; capabilities() says
which (issue 14, item 3). Detection is tested on fake cgroup trees; this development
host is a v1/v2 hybrid whose v2 hierarchy has no memory or pids controller."""
from __future__ import annotations

import os

import pytest

from sandbox import capabilities, cgroup


def _tree(tmp_path, controllers: str, subtree: str, own: str = "/"):
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    (tmp_path / "cgroup.subtree_control").write_text(subtree + "\n")
    (tmp_path / "cgroup.procs").write_text("")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"36 25 0:31 / {tmp_path} rw,relatime shared:10 - cgroup2 cgroup2 rw\n"
                         "37 25 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    cgroup_file = tmp_path / "self-cgroup"
    cgroup_file.write_text(f"4:memory:/x\n0::{own}\n")
    return str(mountinfo), str(cgroup_file)


def test_a_delegated_cgroup_with_memory_and_pids_is_found(tmp_path):
    mountinfo, own = _tree(tmp_path, "cpu memory pids", "memory pids")
    assert cgroup.delegated(mountinfo, own) == str(tmp_path)


def test_a_hybrid_host_without_v2_controllers_says_so(tmp_path):
    mountinfo, own = _tree(tmp_path, "hugetlb", "")
    with pytest.raises(OSError, match="memory, pids not available"):
        cgroup.delegated(mountinfo, own)


def test_controllers_not_enabled_for_children_are_named(tmp_path):
    mountinfo, own = _tree(tmp_path, "memory pids", "")
    with pytest.raises(OSError, match="not enabled for its children"):
        cgroup.delegated(mountinfo, own)


def test_no_cgroup2_mount_is_a_reason(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("37 25 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    own = tmp_path / "self-cgroup"
    own.write_text("0::/\n")
    with pytest.raises(OSError, match="no cgroup2"):
        cgroup.delegated(str(mountinfo), str(own))


def test_a_worker_leaf_sets_limits_and_sees_oom_kills(tmp_path):
    leaf = tmp_path / f"rlvr-sbx-worker-{os.getpid()}"
    leaf.mkdir()
    for name, text in (("cgroup.procs", ""), ("memory.max", "max"), ("pids.max", "max"),
                       ("memory.events", "oom 0\noom_kill 0\n")):
        (leaf / name).write_text(text)
    worker = cgroup.WorkerCgroup(str(tmp_path))
    worker.arm(256 << 20, 32)
    assert (leaf / "memory.max").read_text() == str(256 << 20) and (leaf / "pids.max").read_text() == "32"
    assert not worker.ran_out_of_memory()
    (leaf / "memory.events").write_text("oom 1\noom_kill 1\n")
    assert worker.ran_out_of_memory()


def test_capabilities_say_whether_cgroup_or_rlimits_limit_memory():
    info = capabilities()["cgroup"]
    if info["active"]:
        assert str(info["detail"]).startswith("cgroup v2 at ")
    else:
        assert not info["applicable"] and "rlimits stand in" in str(info["reason"])
    assert capabilities()["rlimits"]["active"]
