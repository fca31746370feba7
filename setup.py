"""Build hook: the Hydra config root lives at the repository's top level (``conf/``); a wheel
(and a plain ``pip install .``) carries a copy of it as ``rlvr/conf`` so an installed rlvr composes
its configs from any directory. Editable installs read the top-level ``conf/`` itself."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConf(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "conf"
        target = Path(self.build_lib) / "rlvr" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildWithConf})
