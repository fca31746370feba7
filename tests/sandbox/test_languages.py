"""Language specs: registry lookup, C++ compiled once, compile errors reported as such."""
from __future__ import annotations

import shutil

import pytest

from sandbox import ExecRequest, LanguageSpec, get_language, register_language
from sandbox.languages import UnknownLanguageError, available_languages
from tests.sandbox.support import needs

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def test_fence_tags_resolve_to_the_spec():
    assert get_language("py").name == "python"
    assert get_language("C++").name == "cpp"


def test_unknown_language_lists_the_known_ones():
    with pytest.raises(UnknownLanguageError, match="python"):
        get_language("cobol")


def test_a_language_is_added_by_registering_a_spec():
    register_language(LanguageSpec(name="sh-test", fence_tags=("sh-test",), source_name="main.sh",
                                   run_argv=("/bin/sh", "main.sh"), exec_paths=("/bin", "/usr/bin")))
    assert "sh-test" in available_languages()


@needs_gxx
def test_cpp_compiles_once_and_runs_many_times(pool):
    prepared = pool.prepare("cpp", "#include <cstdio>\nint main(){int a,b;std::scanf(\"%d %d\",&a,&b);"
                                   "std::printf(\"%d\\n\",a+b);}")
    assert prepared.ok and set(prepared.program.files) == {"main"}
    results = pool.run_batch([ExecRequest(prepared.program, stdin=f"{i} 1".encode()) for i in range(3)])
    assert [r.stdout for r in results] == ["1\n", "2\n", "3\n"]


@needs_gxx
def test_cpp_compile_error_is_reported_with_the_compiler_message(pool):
    prepared = pool.prepare("cpp", "int main() { return undeclared; }")
    assert not prepared.ok
    assert prepared.compile_result.status == "runtime_error" and "undeclared" in prepared.compile_result.stderr


@needs_gxx
def test_cpp_bad_alloc_is_a_memory_limit(pool):
    prepared = pool.prepare("cpp", "#include <vector>\nint main(){std::vector<long> v(1L<<40); return v[0];}")
    assert prepared.ok
    assert pool.run(ExecRequest(prepared.program)).status == "memory_limit"


@needs_gxx
@needs("landlock")
def test_cpp_include_of_a_host_file_cannot_read_it(pool):
    prepared = pool.prepare("cpp", '#include "/etc/passwd"\nint main(){}')
    assert not prepared.ok and "root:" not in prepared.compile_result.stderr
