"""The built-in task where tools matter (data=products), SFT on tool traces, and the tiny_tools presets."""
from __future__ import annotations

import pytest
import torch

from rlvr.config import DataConfig, ProductsConfig
from rlvr.config_checks import validate
from rlvr.data.products import TOOL_OFFER, build_prompt_sets
from rlvr.data.chat import render_prompts
from rlvr.learner.targets import sft_batch
from rlvr.models.tiny import build_tokenizer
from rlvr.rollout.base import RolloutBatch, SamplingParams
from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN, MultiTurnEngine
from rlvr.tools.env import Reply
from rlvr.tools.insert import Inserter

from .test_config import _compose


def _sets(tool_format=None, eval_size=50):
    cfg = DataConfig(source="products", eval_size=eval_size,
                     products=ProductsConfig(min_digits=3, max_digits=4, tool_format=tool_format, num_train=500))
    return build_prompt_sets(cfg)


def test_products_are_exact_multi_digit_products_and_held_out_never_trains():
    train, held = _sets()
    seen = {held.expression(i) for i in range(len(held))}
    for i in range(len(train)):
        p = train[i]
        a, b = p.messages[-1]["content"].split("*")
        assert 3 <= len(a) <= 4 and 3 <= len(b) <= 4
        assert p.reference == str(int(a) * int(b)) and p.verifier == "math"
        assert p.solution == f"\\boxed{{{p.reference}}}"  # no tools: the answer directly
        assert p.messages[-1]["content"] not in seen
    assert train[7] == _sets()[0][7]  # a pure function of (seed, split, index)


def test_tool_prompts_offer_python_and_targets_are_transcripts():
    train, _ = _sets("fenced")
    p = train[0]
    assert p.messages[0] == {"role": "system", "content": TOOL_OFFER}
    expr = p.messages[-1]["content"]
    assert p.solution == f"```python\nprint({expr})\n```\n{TOOL_OPEN}{p.reference}\n{TOOL_CLOSE}\\boxed{{{p.reference}}}"


class _Scripted:
    """An inner engine that writes the given model segments, one per turn (every prompt alike)."""

    def __init__(self, segments: list[list[int]], pad_id: int, eos_ids: set[int]):
        self.segments, self.turn = segments, 0
        self.pad_id, self.eos_ids, self.weight_version = pad_id, eos_ids, 0

    def generate(self, prompts, params, seeds=None) -> RolloutBatch:
        ids = self.segments[self.turn]
        self.turn += 1
        n = len(prompts)
        prompt = torch.tensor([list(p) for p in prompts])
        return RolloutBatch(prompt, torch.ones_like(prompt), torch.tensor([ids] * n), torch.ones(n, len(ids)),
                            torch.zeros(n, len(ids)), torch.zeros(n, dtype=torch.bool), [""] * n)

    def close(self) -> None:
        pass


class _FixedTool:
    """An environment whose tool answers every call with the same output (no sandbox needed here)."""

    stop = ("```\n",)

    def __init__(self, output: str):
        self.output = output

    def reset(self, episode):
        return None

    def respond(self, states, turns):
        return [Reply(done=True) if t.ended else Reply(text=self.output, records=[{"tool": "python", "status": "ok",
                                                                                   "seconds": 0.0}]) for t in turns]

    def close(self) -> None:
        pass


def test_sft_on_a_tool_trace_lays_tokens_out_as_the_rollout_does_and_targets_only_the_model():
    tok = build_tokenizer(kind="chars_tools")
    inserter = Inserter(tok)
    train, _ = _sets("fenced")
    prompt = train[3]
    batch = sft_batch(tok, [prompt], inserter)
    call, rest = prompt.solution.split(TOOL_OPEN)
    output, answer = rest.split(TOOL_CLOSE)
    encode = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    close = tok.convert_tokens_to_ids("<|end|>")
    engine = MultiTurnEngine(_Scripted([encode(call), encode(answer) + [close]], tok.pad_token_id, {close}),
                             _FixedTool(output), tok, inserter, max_context_tokens=256)
    rollout = engine.generate(render_prompts(tok, [prompt]), SamplingParams(max_new_tokens=64), [0])
    width = int(rollout.context[0].sum())
    assert torch.equal(batch.prompt_ids, rollout.prompt_ids)
    assert batch.completion_ids[0].tolist() == rollout.completion_ids[0, :width].tolist()
    assert batch.completion_mask[0].tolist() == rollout.completion_mask[0, :width].tolist()
    assert batch.context[0].tolist() == rollout.context[0, :width].tolist() == [1.0] * width
    assert rollout.transcripts[0] == prompt.solution
    # the tool's frame and output are context only: no target on any inserted id
    inserted = inserter.ids(output)
    start = len(encode(call))
    assert batch.completion_ids[0, start:start + len(inserted)].tolist() == inserted
    assert batch.completion_mask[0, start:start + len(inserted)].sum() == 0
    assert batch.completion_mask[0].sum() == len(encode(call)) + len(encode(answer)) + 1
    assert tok.convert_tokens_to_ids("<|tool|>") in inserted


def test_a_direct_answer_keeps_the_single_turn_layout():
    tok = build_tokenizer(kind="chars_tools")
    train, _ = _sets(None)
    batch = sft_batch(tok, [train[0], train[1]], Inserter(tok))
    assert batch.context_mask is None  # nothing inserted: completion_mask is the attention too


def test_the_tiny_tools_presets_compose_and_validate():
    tools = _compose("+experiment=tiny_tools")
    validate(tools)
    assert tools.rollout.tools.names == ["python"] and tools.rollout.tools.call_format == "fenced"
    assert tools.data.source == "products" and tools.data.products.tool_format == "fenced"
    assert tools.model.tiny_tokenizer == "chars_tools" and 0 < tools.model.sft.stop_at_accuracy < 1
    control = _compose("+experiment=tiny_tools_notools")
    validate(control)
    assert not control.rollout.tools.enabled and control.data.products.tool_format is None
    same = ("model", "trainer", "algorithm")
    assert all(getattr(control, k) == getattr(tools, k) for k in same)


@pytest.fixture(scope="module")
def tools_smoke(tmp_path_factory, train_env):
    """A short tiny_tools run on train_command's small model: the python tool inside the rollout, checkpoints at
    step 2 and 4."""
    import subprocess

    from .conftest import REPO, train_command

    run_dir = tmp_path_factory.mktemp("runs") / "tools"
    proc = subprocess.run(train_command(run_dir, *TOOLS_SMOKE), env=train_env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


TOOLS_SMOKE = ("trainer.threads=1", "+experiment=tiny_tools", "model.sft.steps=300", "rollout.max_new_tokens=48",
               "trainer.eval.every=2")


def test_a_run_with_tools_resumes_exactly_after_sigkill(tools_smoke, tmp_path, train_env):
    """Multi-turn rollouts are a pure function of (seed, step, prompt, completion, turn) and the cells' outputs:
    a run killed after step 2's checkpoint and resumed reproduces the uninterrupted run's metrics, tools/* included."""
    import json

    from .conftest import assert_resume_reproduces

    rows = [json.loads(x) for x in (tools_smoke / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("tools/calls_per_completion", 0) > 0 for r in rows), "no tool call to reproduce"
    assert_resume_reproduces(tools_smoke, tmp_path / "killed", TOOLS_SMOKE, train_env)


def test_rlvr_eval_evaluates_a_tool_using_policy_with_its_tools(tools_smoke, tmp_path, train_env):
    """`rlvr-eval` runs the same multi-turn rollout: the records carry the transcript and the calls."""
    import json
    import subprocess
    import sys

    from .conftest import REPO

    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "rlvr.eval.cli", f"hydra.run.dir={out}", *TOOLS_SMOKE,
           "model=local", f"model.path={tools_smoke / 'checkpoints' / 'step_000004'}", "data.eval_size=8",
           "trainer.eval.k=0"]
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(x) for x in (out / "eval" / "step_000000.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all("transcript" in r and "tool_calls" in r for r in rows)
    assert any(r["tool_calls"] and "[[tool]]" in r["transcript"] for r in rows), rows[:2]
