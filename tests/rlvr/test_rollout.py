"""The transformers engine: shapes, grouping, EOS handling, truncation, log-probs."""
from __future__ import annotations

import pytest
import torch

from rlvr.learner import token_logprobs
from rlvr.models import load_model, load_tokenizer
from rlvr.rollout import ENGINES, SamplingParams, build_engine
from rlvr.rollout.hf import completion_mask, left_pad


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    torch.set_num_threads(1)
    return build_engine("hf", load_model(tiny_model_dir), load_tokenizer(tiny_model_dir))


def _prompts(engine):
    tok = engine.tokenizer
    msgs = [[{"role": "user", "content": "1+2"}], [{"role": "user", "content": "10+20"}]]
    return [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=False) for m in msgs]


def test_left_pad_and_completion_mask():
    ids, mask = left_pad([[5, 6], [7]], pad_id=0)
    assert ids.tolist() == [[5, 6], [0, 7]] and mask.tolist() == [[1, 1], [0, 1]]
    m, truncated = completion_mask(torch.tensor([[4, 1, 0, 0], [4, 4, 4, 4]]), eos_ids={1})
    assert m.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]] and truncated.tolist() == [False, True]


def test_sampling_shapes_and_groups(engine):
    torch.manual_seed(0)
    out = engine.generate(_prompts(engine), SamplingParams(n=3, temperature=1.0, max_new_tokens=6))
    assert len(out) == 6 and len(out.texts) == 6
    assert out.completion_ids.shape == out.logprobs.shape == out.completion_mask.shape
    # completions 0-2 share prompt 0, 3-5 prompt 1
    assert torch.equal(out.prompt_ids[0], out.prompt_ids[2]) and not torch.equal(out.prompt_ids[0], out.prompt_ids[3])
    assert (out.logprobs <= 0).all() and (out.logprobs[out.completion_mask == 0] == 0).all()
    lengths = out.completion_mask.sum(-1)
    last = out.completion_ids[torch.arange(6), (lengths - 1).long()]
    assert torch.equal(out.truncated, ~torch.isin(last, torch.tensor(sorted(engine.eos_ids))))


def test_truncation_flag_at_budget(engine):
    out = engine.generate(_prompts(engine), SamplingParams(n=2, max_new_tokens=1))
    ended = torch.isin(out.completion_ids[:, 0], torch.tensor(sorted(engine.eos_ids)))
    assert torch.equal(out.truncated, ~ended)


def test_sampling_logprobs_match_the_learner(engine):
    torch.manual_seed(1)
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=5)
    out = engine.generate(_prompts(engine), params)
    recomputed, _ = token_logprobs(engine.model, out, temperature=0.7)
    mask = out.completion_mask.bool()
    torch.testing.assert_close(recomputed[mask], out.logprobs[mask], atol=1e-4, rtol=1e-4)


def test_greedy_is_deterministic(engine):
    params = SamplingParams(n=1, greedy=True, max_new_tokens=5)
    a, b = engine.generate(_prompts(engine), params), engine.generate(_prompts(engine), params)
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)


def test_seeded_sampling_repeats(engine):
    params = SamplingParams(n=2, max_new_tokens=5)
    torch.manual_seed(3)
    a = engine.generate(_prompts(engine), params)
    torch.manual_seed(3)
    b = engine.generate(_prompts(engine), params)
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.logprobs, b.logprobs)


def test_engine_registry(engine):
    assert "hf" in ENGINES
    with pytest.raises(KeyError, match="hf"):
        build_engine("vllm-not-here", engine.model, engine.tokenizer)


def test_completions_do_not_depend_on_batch_composition_or_split(engine):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6)
    prompts = _prompts(engine)
    together = engine.generate(prompts, params, seeds=[11, 12])
    engine.batch_size = 1  # one sequence per decode batch
    try:
        alone = engine.generate(prompts[1:], params, seeds=[12])
    finally:
        engine.batch_size = 64
    assert together.texts[2:] == alone.texts
    torch.testing.assert_close(together.logprobs[2:, :alone.logprobs.shape[1]], alone.logprobs)


def test_weight_version_is_stamped_and_protocol_calls_are_safe(engine):
    class Source:
        module = engine.model

    engine.wake()
    engine.update_weights(Source(), version=7)
    out = engine.generate(_prompts(engine), SamplingParams(n=1, max_new_tokens=2), seeds=[0, 1])
    engine.sleep()
    engine.close()
    assert out.weight_version == 7 and engine.model is Source.module


def test_choosing_an_engine_imports_only_that_engine(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from rlvr.config import TrainConfig; from rlvr.config_checks import validate; from rlvr.rollout import ENGINES; "
            "validate(TrainConfig()); assert 'rlvr.rollout.hf' not in sys.modules; ENGINES.lookup('hf'); "
            "assert 'rlvr.rollout.hf' in sys.modules; "
            "assert not any(m.split('.')[0] in ('vllm', 'deepspeed') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_trimmed_drops_only_columns_no_row_uses():
    from rlvr.rollout.base import RolloutBatch

    ids = torch.tensor([[0, 0, 5, 6], [0, 0, 0, 7]])
    pmask = (ids != 0).long()
    comp = torch.tensor([[4, 1, 0, 0], [4, 4, 1, 0]])
    cmask = torch.tensor([[1.0, 1.0, 0, 0], [1.0, 1.0, 1.0, 0]])
    b = RolloutBatch(ids, pmask, comp, cmask, -cmask, torch.zeros(2, dtype=torch.bool), ["a", "b"], 3)
    t = b.trimmed()
    assert t.prompt_ids.tolist() == [[5, 6], [0, 7]] and t.completion_ids.tolist() == [[4, 1, 0], [4, 4, 1]]
    assert t.logprobs.shape == (2, 3) and t.weight_version == 3 and t.texts == ["a", "b"]
