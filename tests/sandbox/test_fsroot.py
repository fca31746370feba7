"""The private root: with Landlock off, the filesystem boundary still holds (issue 14, item 1)."""
from __future__ import annotations

import uuid

import pytest

from sandbox import ExecRequest, SandboxPool
from sandbox.fsroot import plan_binds
from tests.sandbox.support import leftovers, needs, python

pytestmark = [needs("fsroot"), pytest.mark.filterwarnings("ignore::RuntimeWarning")]


@pytest.fixture(scope="module")
def no_landlock():
    with SandboxPool(workers=1, disable=("landlock",)) as pool:
        assert "fsroot" in pool.layers and "landlock" not in pool.layers
        yield lambda source: pool.run(ExecRequest(python(source)))
        assert leftovers(pool) == []


def test_a_world_readable_file_outside_cannot_be_read(no_landlock, outside):
    secret = outside / "secret.txt"
    secret.write_text("s3cr3t-" + uuid.uuid4().hex)
    secret.chmod(0o644)
    result = no_landlock(f"print(open({str(secret)!r}).read())")
    assert result.status == "runtime_error" and "s3cr3t" not in result.stdout


def test_a_world_writable_directory_outside_cannot_be_written(no_landlock, outside):
    outside.chmod(0o777)
    result = no_landlock(f"open({str(outside / 'pwned')!r}, 'w').write('x')")
    assert result.status == "runtime_error" and not (outside / "pwned").exists()


def test_a_world_writable_file_outside_cannot_be_overwritten(no_landlock, outside):
    target = outside / "shared.txt"
    target.write_text("intact")
    target.chmod(0o666)
    outside.chmod(0o777)
    assert no_landlock(f"open({str(target)!r}, 'w').write('pwned')").status == "runtime_error"
    assert target.read_text() == "intact"


def test_the_root_holds_only_runtime_directories(no_landlock):
    result = no_landlock("import os\nprint(sorted(os.listdir('/')))\nprint(os.path.exists('/proc/self'))")
    names = set(eval(result.stdout.splitlines()[0]))  # noqa: S307 - a list literal we printed
    assert not {"proc", "sys", "home", "boot", "var", "srv", "mnt", "opt"} & names, names
    assert result.stdout.splitlines()[1] == "False"


def test_runtime_directories_are_read_only_mounts(no_landlock):
    result = no_landlock("import os, sys\nprint(bool(os.statvfs(sys.prefix).f_flag & os.ST_RDONLY))")
    assert result.stdout == "True\n"


def test_the_working_directory_is_writable(no_landlock):
    assert no_landlock("open('f', 'w').write('x')\nprint(open('f').read())").stdout == "x\n"


def test_symlinks_are_recreated_and_nested_paths_need_no_bind_of_their_own(tmp_path):
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    binds, links, _ = plan_binds([str(tmp_path / "usr"), str(tmp_path / "usr" / "lib"), str(tmp_path / "lib")], [])
    assert binds == [str(tmp_path / "usr")]
    assert links == [(str(tmp_path / "lib"), "usr/lib")]


def test_a_runtime_path_resolving_to_the_host_root_is_refused():
    with pytest.raises(OSError, match="refusing to bind /"):
        plan_binds(["/usr", "/"], [])


def test_cpp_compiles_and_runs_without_landlock():
    with SandboxPool(workers=1, disable=("landlock",)) as pool:
        prepared = pool.prepare("cpp", "#include <cstdio>\nint main() { std::puts(\"hi\"); }")
        assert prepared.ok, prepared.compile_result
        assert pool.run(ExecRequest(prepared.program)).stdout == "hi\n"
