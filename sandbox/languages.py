"""Per-language specs: how a program is staged, compiled, run, and which paths it may touch.

Adding a language is one ``register_language(LanguageSpec(...))`` call; nothing else
in the sandbox names a language.
"""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field

__all__ = ["LanguageSpec", "register_language", "get_language", "available_languages", "UnknownLanguageError",
           "runtime_paths", "python_import_dirs", "DEVICES"]

_SYSTEM_LIBS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache", "/etc/localtime",
                "/usr/share/zoneinfo")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
DEVICES = _DEVICES
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class LanguageSpec:
    """How to run one language.

    name:         registry key (``python``, ``cpp``).
    fence_tags:   Markdown fence labels that mean this language (first is canonical).
    source_name:  file the source is written to.
    compile_argv: command that turns the source into ``artifact`` (``None``: interpreted).
    artifact:     file the compiler produces, staged for every later run.
    run_argv:     command that runs the program; ``None`` means "run Python in-process in
                  the warm worker" (no interpreter start-up per run).
    read_paths:   paths the program may read (besides its working directory).
    exec_paths:   paths it may execute from.
    """

    name: str
    fence_tags: tuple[str, ...]
    source_name: str
    compile_argv: tuple[str, ...] | None = None
    artifact: str | None = None
    run_argv: tuple[str, ...] | None = None
    read_paths: tuple[str, ...] = field(default=())
    exec_paths: tuple[str, ...] = field(default=())

    @property
    def compiled(self) -> bool:
        return self.compile_argv is not None

    @property
    def in_process(self) -> bool:
        return self.run_argv is None


class UnknownLanguageError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


_LANGUAGES: dict[str, LanguageSpec] = {}


def register_language(spec: LanguageSpec) -> LanguageSpec:
    """Make ``spec`` available under its name and every fence tag."""
    _LANGUAGES[spec.name] = spec
    return spec


def get_language(name: str) -> LanguageSpec:
    """The spec registered under ``name`` or one of its fence tags (case-insensitive)."""
    key = name.strip().lower()
    for spec in _LANGUAGES.values():
        if key == spec.name or key in spec.fence_tags:
            return spec
    raise UnknownLanguageError(f"unknown language {name!r}; known languages: {', '.join(available_languages())}")


def available_languages() -> list[str]:
    return sorted(_LANGUAGES)


def python_import_dirs() -> tuple[str, ...]:
    """Where this interpreter imports from: its stdlib and site directories and every
    other ``sys.path`` directory (``.pth`` additions), except the checkout holding
    ``sandbox`` itself, which the pool puts first on the worker's path."""
    paths = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p) and p != _PACKAGE_PARENT}
    return tuple(sorted(p for p in paths if p))


def _python_paths() -> tuple[str, ...]:
    paths = set(python_import_dirs())
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.add(os.path.dirname(os.path.abspath(__file__)))  # the sandbox package, already imported
    return tuple(sorted(p for p in paths if p)) + _SYSTEM_LIBS + _DEVICES


def _gxx_paths() -> tuple[str, ...]:
    gxx = shutil.which("g++") or "/usr/bin/g++"
    bins = {os.path.dirname(gxx), os.path.dirname(os.path.realpath(gxx)), "/usr/bin", "/usr/libexec"}
    return tuple(sorted(bins)) + ("/usr/lib", "/usr/lib64", "/lib", "/lib64")


register_language(LanguageSpec(
    name="python", fence_tags=("python", "py", "python3"), source_name="main.py",
    read_paths=_python_paths(),
))

register_language(LanguageSpec(
    name="cpp", fence_tags=("cpp", "c++", "cc", "cxx"), source_name="main.cpp",
    compile_argv=("g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"),
    artifact="main", run_argv=("./main",),
    read_paths=("/usr/include", "/usr/local/include") + _SYSTEM_LIBS + _DEVICES,
    exec_paths=_gxx_paths(),
))


def runtime_paths() -> tuple[str, ...]:
    """Every registered language's readable and executable paths, devices excluded:
    what a worker's private root binds read-only (one worker serves every language)."""
    paths = {p for spec in _LANGUAGES.values() for p in spec.read_paths + spec.exec_paths}
    return tuple(sorted(paths - set(_DEVICES)))
