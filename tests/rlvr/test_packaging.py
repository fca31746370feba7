"""A non-editable install works: the wheel carries a copy of the top-level `conf/` as `rlvr/conf` and
`rlvr-train` composes from it; the source tree keeps a single copy, at the top level."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, timeout=300, capture_output=True)
    return next(out.glob("rlvr-*.whl"))


def test_wheel_ships_every_config_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {"rlvr/" + p.relative_to(REPO).as_posix() for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped and shipped <= names
    assert "rlvr/conf/config.yaml" in names and "rlvr/conf/preset/tiny_llama.yaml" in names


def test_installed_wheel_composes_outside_the_repository(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import rlvr, sys; assert rlvr.__file__.startswith(sys.argv[1]), rlvr.__file__; "
            "from rlvr.train import main; sys.argv = ['rlvr-train', '--cfg', 'job', 'rollout.max_new_tokens=9']; main()")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max_new_tokens: 9" in proc.stdout and "stop_at_accuracy: 0.3" in proc.stdout  # the preset applied


def test_the_config_root_lives_once_at_the_top_level():
    assert (REPO / "conf" / "config.yaml").is_file()
    assert not (REPO / "rlvr" / "conf").exists()
    from rlvr.config import CONF_DIR

    assert CONF_DIR == str(REPO / "conf")
