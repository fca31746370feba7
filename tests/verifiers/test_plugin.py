"""A real third-party verifier distribution, found through the ``rlvr.verifiers`` entry points.

The plugin is built from a pyproject in a temporary directory and installed with pip
into a temporary target directory; a fresh interpreter with that directory on
PYTHONPATH must then see it through ``importlib.metadata`` (no mocking), in
``get_verifier``, ``available_verifiers`` and ``rlvr-verify``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "rlvr-shout-plugin"
version = "0.1.0"

[project.entry-points."rlvr.verifiers"]
shout = "rlvr_shout_plugin:ShoutVerifier"

[tool.setuptools]
py-modules = ["rlvr_shout_plugin"]
"""

MODULE = '''
"""Correct when the completion is the reference in capitals plus a suffix."""
from dataclasses import dataclass

from verifiers import BaseVerifier, Verdict


@dataclass(frozen=True)
class ShoutOptions:
    suffix: str = "!"


class ShoutVerifier(BaseVerifier):
    Options = ShoutOptions

    def verify(self, *, completion, reference, **fields):
        ok = completion == str(reference).upper() + self.options.suffix
        return Verdict(1.0, "correct") if ok else Verdict(0.0, "wrong_answer", {"got": completion})
'''

CHECK = """
from verifiers import available_verifiers, get_verifier
assert "shout" in available_verifiers(), available_verifiers()
assert get_verifier("shout").verify(completion="HI!", reference="hi").reward == 1.0
assert get_verifier("shout", suffix="?").verify(completion="HI!", reference="hi").reason == "wrong_answer"
print("plugin ok")
"""


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("plugin")
    src, site = root / "src", root / "site"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "rlvr_shout_plugin.py").write_text(MODULE)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(src)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    assert list(site.glob("rlvr_shout_plugin-0.1.0.dist-info/entry_points.txt"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    return env


def test_plugin_is_found_by_the_registry(plugin_env):
    done = subprocess.run([sys.executable, "-c", CHECK], env=plugin_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "plugin ok" in done.stdout


def _cli_commands() -> list[list[str]]:
    commands = [[sys.executable, "-m", "verifiers.cli"]]
    script = Path(sys.executable).parent / "rlvr-verify"
    if script.exists():  # the console script, when rlvr is installed in this environment
        commands.append([str(script)])
    return commands


@pytest.mark.parametrize("command", _cli_commands(), ids=lambda c: Path(c[-1]).name)
def test_plugin_works_through_rlvr_verify(plugin_env, tmp_path, command):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"completion": "HI?", "reference": "hi"}, {"completion": "HI!", "reference": "hi"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run(
        [*command, "shout", "--input", str(src), "--output", str(out), "--workers", "1", "--opt", "suffix=?"],
        env=plugin_env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["verdict"], r["reward"]) for r in scored] == [("correct", 1.0), ("wrong_answer", 0.0)]
    assert "mean reward  0.5000" in done.stdout
