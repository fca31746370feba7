"""Multi-turn rollouts (rlvr.rollout.multiturn): exact ids, masks, limits and errors inside the rollout.

A scripted inner engine stands in for the policy: it plays a fixed list of model turns, honouring stop
strings like a real engine, so every layout below is known exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pytest
import torch

from rlvr.algo.gae import gae_advantages, token_rewards
from rlvr.models.tiny import build_tokenizer
from rlvr.rollout.base import RolloutBatch, SamplingParams
from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN, MultiTurnEngine, tool_metrics
from rlvr.tools.env import Reply, ToolEnvironment, Turn
from rlvr.tools.insert import Inserter, NoToolFormat

FRAME = "<|end|><|user|>{output}<|end|><|assistant|>"


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


class Scripted:
    """Plays ``turns[k]`` as the k-th model turn of every row (k = insertions so far: <|user|> headers - 1)."""

    pad_id, weight_version, shares_policy, default_rollout_correction = 0, 3, True, "none"

    def __init__(self, tok, turns: Sequence[str]):
        self.tok, self.turns = tok, list(turns)
        self.eos_ids = frozenset({tok.eos_token_id})
        self.user = tok.convert_tokens_to_ids("<|user|>")
        self.calls: list[list[list[int]]] = []

    def generate(self, prompts, params: SamplingParams, seeds=None) -> RolloutBatch:
        self.calls.append([list(p) for p in prompts])
        rows = []
        for p in prompts:
            k = list(p).count(self.user) - 1
            text = self.turns[min(k, len(self.turns) - 1)]
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            out = []
            for t in ids[:params.max_new_tokens]:
                out.append(t)
                if t in self.eos_ids or any(s in self.tok.decode(out, skip_special_tokens=False) for s in params.stop):
                    break
            rows.append(out)
        width = max(1, max(len(r) for r in rows))
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width))
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        truncated = torch.tensor([len(r) == params.max_new_tokens and r[-1] not in self.eos_ids
                                  and not any(s in self.tok.decode(r, skip_special_tokens=False) for s in params.stop)
                                  for r in rows])
        plen = max(len(p) for p in prompts)
        return RolloutBatch(torch.zeros((len(rows), plen), dtype=torch.long), torch.ones((len(rows), plen)),
                            ids, mask, -0.5 * mask, truncated, self.tok.batch_decode(ids), self.weight_version)


def engine(tok, turns, names=("calculator",), fmt="fenced", max_calls=4, context=0, max_output_chars=200):
    env = ToolEnvironment(list(names), call_format=fmt, max_calls=max_calls, max_output_chars=max_output_chars)
    return MultiTurnEngine(Scripted(tok, turns), env, tok, Inserter(tok, FRAME), context, 2 * max_calls + 2)


def prompt(tok, text="6*7?"):
    return tok(f"<|user|>{text}<|assistant|>", add_special_tokens=False)["input_ids"]


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_resumes_from_the_exact_sampled_ids_plus_the_inserted_ids(tok):
    cell, answer = "```calculator\n6*7\n```\n", "\\boxed{42}<|end|>"
    eng = engine(tok, [cell, answer])
    b = eng.generate([prompt(tok)], SamplingParams(n=2, max_new_tokens=64), seeds=[5])
    inserted = ids(tok, "<|end|><|user|>42<|end|><|assistant|>")
    expect = ids(tok, cell) + inserted + ids(tok, answer)
    for row in range(2):
        n = len(expect)
        assert b.completion_ids[row, :n].tolist() == expect
        sampled = [1.0] * len(ids(tok, cell)) + [0.0] * len(inserted) + [1.0] * len(ids(tok, answer))
        assert b.completion_mask[row, :n].tolist() == sampled
        assert b.context[row, :n].tolist() == [1.0] * n
        assert (b.logprobs[row, :n] == torch.tensor(sampled) * -0.5).all()  # 0 on inserted ids
    # the second model turn was asked to continue from exactly those ids
    assert eng.inner.calls[1][0] == prompt(tok) + ids(tok, cell) + inserted
    assert b.texts[0] == "```calculator\n6*7\n```\n\\boxed{42}"  # the model's own text: what verifiers score
    assert b.transcripts[0] == f"```calculator\n6*7\n```\n{TOOL_OPEN}42{TOOL_CLOSE}\\boxed{{42}}"
    assert b.tool_records[0] == [{"tool": "calculator", "status": "ok", "seconds": pytest.approx(0, abs=1),
                                  "reason": "ok"}]
    assert not b.truncated.any() and b.weight_version == 3
    assert b.lengths.tolist() == [len(ids(tok, cell)) + len(ids(tok, answer))] * 2  # lengths count sampled ids
    m = tool_metrics(b, torch.tensor([1.0, 0.0]))
    assert m["tools/calls_per_completion"] == 1 and m["tools/error_rate"] == 0
    assert m["tools/inserted_frac"] == pytest.approx(len(inserted) / len(expect))
    assert m["tools/reward_by_calls/1"] == 0.5


def test_an_answer_without_a_call_is_one_turn(tok):
    b = engine(tok, ["\\boxed{1}<|end|>"]).generate([prompt(tok)], SamplingParams(max_new_tokens=32), seeds=[0])
    assert b.completion_mask.sum() == b.context.sum() == len(ids(tok, "\\boxed{1}<|end|>"))
    assert b.tool_records == [[]] and tool_metrics(b)["tools/calls_per_completion"] == 0


def test_max_new_tokens_counts_sampled_ids_only(tok):
    cell = "```calculator\n" + "1+" * 10 + "1\n```\n"
    b = engine(tok, [cell, "x" * 200]).generate([prompt(tok)], SamplingParams(max_new_tokens=len(ids(tok, cell)) + 7),
                                                  seeds=[0])
    assert int(b.completion_mask.sum()) == len(ids(tok, cell)) + 7
    assert bool(b.truncated[0])
    assert int(b.context.sum()) > int(b.completion_mask.sum())


@pytest.mark.parametrize("turn,reason", [
    ('<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}<|end|>', "unclosed"),
    ('<tool_call>{"name": "nope", "arguments": {}}</tool_call>', "unknown_tool"),
    ('<tool_call>{"name": calculator}</tool_call>', "malformed"),
    ('<tool_call>{"name": "calculator", "arguments": {}}</tool_call>', "arguments"),
])
def test_bad_calls_are_errors_inside_the_rollout_and_counted(tok, turn, reason):
    b = engine(tok, [turn, "\\boxed{2}<|end|>"], fmt="json").generate([prompt(tok)], SamplingParams(max_new_tokens=96),
                                                                      seeds=[0])
    assert b.tool_records[0][0]["reason"] == reason and b.tool_records[0][0]["status"] == "error"
    assert tool_metrics(b)["tools/error_rate"] == 1.0
    if reason != "unclosed":  # the model reads the error and goes on
        assert "error:" in b.transcripts[0] and b.texts[0].endswith("\\boxed{2}")


def test_the_call_limit_tells_the_model_to_answer(tok):
    cell = "```calculator\n1+1\n```\n"
    b = engine(tok, [cell, cell, cell, "\\boxed{2}<|end|>"], max_calls=2).generate(
        [prompt(tok)], SamplingParams(max_new_tokens=200), seeds=[0])
    reasons = [r["reason"] for r in b.tool_records[0]]
    assert reasons == ["ok", "ok", "max_calls"]
    assert "limit of 2 tool calls" in b.transcripts[0] and b.texts[0].endswith("\\boxed{2}")


def test_output_that_would_overflow_the_context_is_cut(tok):
    cell = "```calculator\n9**900\n```\n"
    p = prompt(tok)
    limit = len(p) + len(ids(tok, cell)) + 60
    b = engine(tok, [cell, "\\boxed{1}<|end|>"], context=limit, max_output_chars=5000).generate(
        [p], SamplingParams(max_new_tokens=400), seeds=[0])
    assert len(p) + int(b.context.sum()) <= limit
    assert "characters cut" in b.transcripts[0]


def test_no_room_for_the_frame_ends_the_rollout_truncated(tok):
    cell = "```calculator\n1+1\n```\n"
    p = prompt(tok)
    b = engine(tok, [cell, "\\boxed{1}<|end|>"], context=len(p) + len(ids(tok, cell)) + 3).generate(
        [p], SamplingParams(max_new_tokens=400), seeds=[0])
    assert bool(b.truncated[0]) and b.tool_records[0][-1]["reason"] == "context_full"


def test_a_template_without_a_tool_role_is_refused_at_start(tok):
    import copy

    strict = copy.deepcopy(tok)
    strict.chat_template = ("{% for m in messages %}{% if m['role'] not in ['user', 'assistant'] %}"
                            "{{ raise_exception('roles are user and assistant') }}{% endif %}"
                            "<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")
    with pytest.raises(NoToolFormat, match="response_format"):
        Inserter(strict)
    assert Inserter(strict, FRAME).before == "<|end|><|user|>"


def test_a_turn_that_already_ended_does_not_get_a_second_end_of_turn(tok):
    ins = Inserter(tok, FRAME)
    end = tok.eos_token_id
    assert ins.ids("x", last_sampled=end) == ins.ids("x")[1:]


class Retry:
    """An environment that is not a tool: a wrong answer gets feedback and one more try."""

    stop = ()

    def reset(self, episode):
        return {"tries": 0}

    def respond(self, states, turns: Sequence[Turn]):
        out = []
        for s, t in zip(states, turns):
            s["tries"] += 1
            out.append(Reply(done=True) if "42" in t.text or s["tries"] > 1 else Reply(text="wrong, try again"))
        return out

    def close(self):
        pass


def test_any_environment_drives_the_turns(tok):
    eng = MultiTurnEngine(Scripted(tok, ["\\boxed{41}<|end|>", "\\boxed{42}<|end|>"]), Retry(), tok,
                          Inserter(tok, FRAME), 0, 4)
    b = eng.generate([prompt(tok)], SamplingParams(max_new_tokens=64), seeds=[0])
    assert b.transcripts[0] == f"\\boxed{{41}}{TOOL_OPEN}wrong, try again{TOOL_CLOSE}\\boxed{{42}}"
    # the model's own <|end|> closed its first turn: the frame does not repeat it
    assert b.completion_ids[0].tolist().count(tok.eos_token_id) == 3


def test_gae_skips_inserted_tokens():
    """A hole in the mask (a tool's output) is transparent: the TD chain runs from one sampled token to the next,
    and the score lands on the last sampled token."""
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.1, 0.2, 9.0, 9.0, 0.4, 9.0]])
    rewards = token_rewards(torch.tensor([1.0]), torch.zeros_like(mask), mask, 0.0)
    assert rewards.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]]
    adv, ret = gae_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    compact, _ = gae_advantages(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.1, 0.2, 0.4]]),
                                torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert adv[0, [0, 1, 4]].tolist() == pytest.approx(compact[0].tolist())
    assert adv[0, [2, 3, 5]].tolist() == [0.0, 0.0, 0.0]


@dataclass
class _Echo:
    """Inserts a fixed text after every turn that hits the stop string, twice, then lets the model finish."""

    stop: tuple = ("e",)

    def reset(self, episode: Any):
        return [0]

    def respond(self, states, turns):
        out = []
        for s, t in zip(states, turns):
            s[0] += 1
            out.append(Reply(done=True) if t.ended or s[0] > 2 else Reply(text="ok 12"))
        return out

    def close(self):
        pass


def test_the_learner_recomputes_the_engines_logprobs_on_a_multi_turn_batch(tmp_path, tok):
    """A real tiny model through the hf engine: sampled ids' log-probs match the learner's (attention sees the
    inserted ids; positions follow them), so the loss is computed on exactly what was sampled."""
    from transformers import AutoModelForCausalLM

    from rlvr.learner.logprobs import token_logprobs
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.rollout import build_engine

    build_tiny_llama(tmp_path, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    inner = build_engine("hf", model, tok)
    eng = MultiTurnEngine(inner, _Echo(), tok, Inserter(tok, FRAME), 256, 6)
    b = eng.generate([prompt(tok), prompt(tok, "1+2+3")], SamplingParams(n=3, max_new_tokens=48), seeds=[1, 2])
    assert (b.context.sum(-1) > b.completion_mask.sum(-1)).any()  # something was inserted
    with torch.no_grad():
        logp, _ = token_logprobs(model, b, 1.0)
    real = b.completion_mask.bool()
    assert (logp[real] - b.logprobs[real]).abs().max() < 1e-4
    # the update: ratio 1 on every sampled id (no clipping), the loss's denominator counts sampled ids only
    from rlvr.config import AlgorithmConfig, TrainerConfig
    from rlvr.learner import Learner, build_backend

    trainer = TrainerConfig(total_steps=1, prompts_per_step=2, micro_batch_size=6)
    algo = AlgorithmConfig(group_size=3)
    learner = Learner(build_backend("torch", model, trainer, algo), algo, trainer, max_new_tokens=48,
                      temperature=1.0, dtype="fp32")
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 2.0])
    stats = learner.update(b, adv, b.completion_mask, None, seed=0)
    lengths = b.completion_mask.sum(-1)
    assert stats["clip_frac/low"] == 0.0 and stats["clip_frac/high"] == 0.0
    assert stats["loss"] == pytest.approx((-(adv * lengths).sum() / lengths.sum()).item(), abs=1e-4)


# A ChatML template with tools written the way Qwen2.5's is laid out: the tool list in the system turn, tool
# outputs as user turns wrapped in <tool_response>, consecutive tool messages sharing one turn.
QWEN_TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nYou may call these tools:\n<tools>{% for t in tools %}\n{{ t | tojson }}"
    "{% endfor %}\n</tools>\nCall one as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><|im_end|>\n"
    "{% endif %}{% for m in messages %}{% if m['role'] == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}<|im_start|>user\n{% endif %}"
    "<tool_response>\n{{ m['content'] }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}<|im_end|>\n{% endif %}"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_real_template_families_frame_tool_outputs():
    from .chat_tokenizers import gemma_tokenizer, llama3_tokenizer, qwen_tokenizer

    qwen = qwen_tokenizer()
    ins = Inserter(qwen)
    assert (ins.before, ins.after) == ("<|im_end|>\n<|im_start|>tool\n", "<|im_end|>\n<|im_start|>assistant\n")
    end = qwen.convert_tokens_to_ids("<|im_end|>")
    assert ins.ids("7", last_sampled=end)[0] != end  # a turn the model ended itself gets no second <|im_end|>
    qwen.chat_template = QWEN_TOOLS_TEMPLATE
    ins = Inserter(qwen)
    assert ins.before == "<|im_end|>\n<|im_start|>user\n<tool_response>\n"
    assert ins.after == "\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    llama = Inserter(llama3_tokenizer())
    assert llama.before == "<|eot_id|><|start_header_id|>tool<|end_header_id|>\n\n"
    with pytest.raises(NoToolFormat):  # Gemma's roles must alternate user/assistant
        Inserter(gemma_tokenizer())


def test_prompts_declare_the_offered_tools():
    from rlvr.config import ToolsConfig
    from rlvr.data.chat import declare_tools, render_prompts
    from rlvr.data.schema import Prompt

    from .chat_tokenizers import qwen_tokenizer

    qwen = qwen_tokenizer()
    qwen.chat_template = QWEN_TOOLS_TEMPLATE
    p = Prompt(messages=({"role": "user", "content": "6*7?"},), verifier="math", reference="42")
    plain = qwen.decode(render_prompts(qwen, [p])[0])
    declare_tools(qwen, ToolsConfig(names=["python", "calculator"]))
    text = qwen.decode(render_prompts(qwen, [p])[0])
    assert "<tools>" not in plain and '"name": "python"' in text and '"name": "calculator"' in text
