"""A non-editable install works: the wheel carries a copy of the top-level `conf/` as `rlvr/conf` and
`rlvr-train` composes from it; the source tree keeps a single copy, at the top level."""
from __future__ import annotations

import json
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


@pytest.mark.timeout(900)
def test_wheel_in_a_fresh_venv_trains_from_another_directory(wheel, tmp_path, train_env):
    """`pip install rlvr-*.whl` into a new venv (its dependencies seen through a path file, offline), then
    its own `rlvr-train trainer.total_steps=2` console script, run from a directory that is not the repository."""
    import site
    import venv

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    purelib = next((env_dir / "lib").glob("python3*/site-packages"))
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
                              "--no-deps", "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    # Only now the dependencies become visible (plain paths: no editable finder); seen during the install,
    # the test environment's own rlvr would have been uninstalled as the "old version".
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**train_env, "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(env_dir / "bin" / "rlvr-train"), "trainer.total_steps=2"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(next(work.glob("runs/*/summary.json")).read_text())
    assert summary["steps"] == 2
    where = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import rlvr.config as c; print(c.CONF_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120).stdout.strip()
    assert where.startswith(str(purelib)) and where.endswith("rlvr/conf"), where


def test_the_config_root_lives_once_at_the_top_level():
    assert (REPO / "conf" / "config.yaml").is_file()
    assert not (REPO / "rlvr" / "conf").exists()
    from rlvr.config import CONF_DIR

    assert CONF_DIR == str(REPO / "conf")
