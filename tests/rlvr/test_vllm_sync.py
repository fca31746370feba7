"""The vLLM engine's weight push (one streamed, checked call) and the weight versions it reads back
(`rlvr/rollout/vllm_sync.py`). No vLLM needed: fake engines that read a push the way vLLM's loader does.

The real engine runs these paths in tests/rlvr/test_vllm.py (one process) and
tests/rlvr/test_distributed_runs.py (two ranks, ZeRO-3); a real ZeRO-3 source is measured in
tests/rlvr/test_deepspeed.py.
"""
from __future__ import annotations

import sys
import weakref
from types import SimpleNamespace

import pytest
import torch

from rlvr.config import ConfigError
from rlvr.rollout import SamplingParams, StaleWeightsError
from rlvr.rollout import vllm as vllm_engine
from rlvr.rollout.vllm import VLLMEngine
from rlvr.rollout.vllm_sync import IncompletePushError, PushStream, completion_versions

EOS = 1


class Tokenizer:
    eos_token_id, pad_token_id = EOS, 0

    def batch_decode(self, ids, skip_special_tokens):
        return ["" for _ in ids]


class ReadingLLM:
    """Reads the push like vLLM's loader does (``for name, tensor in weights``), keeps a sum per name."""

    def __init__(self, stop_after=None, fail_after=None):
        self.loaded: dict[str, float] = {}
        self.reloads, self.version, self.llm_engine = 0, None, self
        self.stop_after, self.fail_after = stop_after, fail_after
        self.spans = None  # the weight_versions of the next outputs (None: the current version)

    def collective_rpc(self, method, kwargs):
        assert method == "reload_weights" and kwargs["is_checkpoint_format"] is True
        self.reloads += 1
        for i, (name, tensor) in enumerate(kwargs["weights_iterator"]):
            if i == self.stop_after:
                return
            if i == self.fail_after:
                raise RuntimeError("vLLM's loader failed")
            self.loaded[name] = float(tensor.sum())

    def reset_prefix_cache(self):
        pass

    def set_weight_version(self, version):
        self.version = version

    def generate(self, inputs, sampling_params, use_tqdm):
        spans = self.spans if self.spans is not None else [SimpleNamespace(version=self.version)]
        return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=[5, EOS], weight_versions=spans,
                                                         logprobs=[{5: SimpleNamespace(logprob=-1.0)},
                                                                   {EOS: SimpleNamespace(logprob=-0.5)}])])
                for _ in inputs]


class GatheringSource:
    """Like ZeRO-3's `named_tensors`: each tensor a fresh full copy made when asked for; counts the live ones."""

    def __init__(self, model, drop=(), extra=(), reshape=()):
        self.module, self.drop, self.extra, self.reshape = model, set(drop), list(extra), set(reshape)
        self.live = self.peak = self.made = 0

    def _freed(self):
        self.live -= 1

    def named_tensors(self):
        items = [(n, t) for n, t in self.module.state_dict().items() if n not in self.drop]
        for name, tensor in items + [(n, torch.zeros(3)) for n in self.extra]:
            copy = tensor.detach().clone()
            if name in self.reshape:
                copy = copy.reshape(-1)
            self.live, self.made = self.live + 1, self.made + 1
            self.peak = max(self.peak, self.live)
            weakref.finalize(copy, self._freed)
            yield name, copy
            del copy


def model_of(layers=6):
    return torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(layers)])


@pytest.fixture(autouse=True)
def plain_sampling(monkeypatch):
    monkeypatch.setattr(vllm_engine, "vllm_sampling_params", lambda **kw: kw)


def engine_of(model, llm):
    return VLLMEngine(model, Tokenizer(), llm=llm, on_gpu=False)


def generate(engine):
    return engine.generate([[3]], SamplingParams(n=2, max_new_tokens=2), seeds=[1])


# ---- the push: one call, streamed, bounded --------------------------------------------
def test_a_push_is_one_call_that_holds_at_most_two_gathered_tensors():
    model, llm = model_of(), ReadingLLM()
    engine, source = engine_of(model, llm), GatheringSource(model)
    engine.update_weights(source, 3)
    assert llm.reloads == 1 and source.made == 12  # 6 layers x (weight, bias), one reload call
    assert source.peak <= 2 < source.made  # the one vLLM reads and the next being gathered; never the model
    assert llm.loaded == {n: pytest.approx(float(t.sum())) for n, t in model.state_dict().items()}
    assert source.live == 0  # nothing kept afterwards
    assert generate(engine).weight_version == 3


@pytest.mark.parametrize("bad, message, loaded", [
    (dict(drop=["2.bias"]), "missing \\['2.bias'\\]", 11),
    (dict(extra=["lm_head.weight"]), "unknown \\['lm_head.weight'\\]", 12),
    (dict(reshape=["1.weight"]), "wrong shape \\['1.weight \\[16\\] != \\[4, 4\\]'\\]", 11),
])
def test_a_bad_push_is_withheld_tensor_by_tensor_and_raised_after_the_call(bad, message, loaded):
    model, llm = model_of(), ReadingLLM()
    engine = engine_of(model, llm)
    with pytest.raises(IncompletePushError, match=message):
        engine.update_weights(GatheringSource(model, **bad), 1)
    assert llm.reloads == 1 and len(llm.loaded) == loaded  # the good ones went in; a bad one never reached vLLM
    assert engine.weight_version == 0  # the version is not advanced
    with pytest.raises(StaleWeightsError, match="failed weight push"):
        generate(engine)
    engine.update_weights(GatheringSource(model), 1)  # a complete push makes it usable again
    assert generate(engine).weight_version == 1


def test_a_repeated_tensor_is_reported_once_loaded():
    stream = PushStream([("a", torch.zeros(2)), ("a", torch.ones(2))], {"a": (2,)})
    assert [float(t.sum()) for _, t in stream] == [0.0]
    with pytest.raises(IncompletePushError, match="repeated \\['a'\\]"):
        stream.verdict()


@pytest.mark.parametrize("llm_kwargs, match", [({"stop_after": 4}, "7 left unread by vLLM"),
                                               ({"fail_after": 4}, "vLLM's loader failed")])
def test_the_source_runs_to_its_end_when_vllm_stops_reading_or_fails(llm_kwargs, match):
    """Under ZeRO-3 every rank must make every gather: the source is drained after the call either way."""
    model, llm = model_of(), ReadingLLM(**llm_kwargs)
    engine, source = engine_of(model, llm), GatheringSource(model)
    with pytest.raises((IncompletePushError, RuntimeError), match=match):
        engine.update_weights(source, 1)
    assert source.made == 12  # every tensor was asked for (gathered), also those vLLM never read
    with pytest.raises(StaleWeightsError, match="failed weight push"):
        generate(engine)


def test_an_adapted_policy_streams_merged_weights_under_its_base_names():
    from peft import LoraConfig, get_peft_model

    base = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["0", "1"], init_lora_weights=False))

    class Backend:
        module = model

        def named_tensors(self):
            from rlvr.models.lora import plain_tensors
            return plain_tensors(model)
    llm = ReadingLLM()
    engine_of(model, llm).update_weights(Backend(), 1)
    merged = model.merge_and_unload().state_dict()
    assert llm.loaded == {n: pytest.approx(float(t.sum()), abs=1e-5) for n, t in merged.items()}


# ---- the version on every completion ----------------------------------------------------
def test_the_batch_version_is_the_one_vllm_stamped_not_the_engines_counter():
    model, llm = model_of(1), ReadingLLM()
    engine = engine_of(model, llm)
    assert llm.version == "0"  # stamped at construction: the weights it was built from
    engine.update_weights(GatheringSource(model), 4)
    llm.spans = [SimpleNamespace(version="3")]  # vLLM says 3 while the engine's counter says 4
    assert generate(engine).weight_version == 3  # the loop then refuses it as stale
    llm.spans = [SimpleNamespace(version="3"), SimpleNamespace(version="4")]  # one completion across a push
    with pytest.raises(StaleWeightsError, match="weight versions \\[3, 4\\]"):
        generate(engine)


def test_outputs_without_weight_versions_name_the_vllm_version_needed(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(__version__="0.31.0"))
    with pytest.raises(ConfigError, match=r"vLLM 0\.31\.0 returned a completion without weight versions.*"
                                          r"needs vLLM >= 0\.32") as info:
        completion_versions(SimpleNamespace(token_ids=[5]))
    assert "\n" not in str(info.value)
    assert completion_versions(SimpleNamespace(weight_versions=[])) == set()  # a completion without tokens
    with pytest.raises(StaleWeightsError, match="'default'"):  # set_weight_version never called
        completion_versions(SimpleNamespace(weight_versions=[SimpleNamespace(version="default")]))
