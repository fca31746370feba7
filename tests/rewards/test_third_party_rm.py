"""Third-party reward models as a reward source (`rlvr.rewards.model`): encoders through their own forward,
causal-LM classifiers at the last real token, multi-output heads, precision, remote code, running statistics."""
from __future__ import annotations

import json
import math
import subprocess

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource, TrainConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext
from rlvr.rewards.model import RewardModelSource, check_model_source, prompt_text, render_pair
from rlvr.rewards.score_stats import RunningScoreStats
from tests.rlvr.conftest import REPO, train_command, train_env  # noqa: F401  (train_env is a fixture)
from tests.rewards.tiny_bert import build_tiny_bert

P = Prompt(messages=({"role": "user", "content": "2+3"},), verifier="math", reference="5")
Q = Prompt(messages=({"role": "user", "content": "what is 12+30?"},), verifier="math", reference="42")
TEXTS = ["\\boxed{5}", "the answer is a much longer one that pads the others \\boxed{5}", "5", "the answer is 42"]
LABELS = {0: "harmlessness", 1: "helpfulness", 2: "verbosity"}
TEMPLATE = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert") / "rm")


@pytest.fixture(scope="module")
def bert3_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert3") / "rm", id2label=LABELS)


def _source(path, ctx_dtype: str = "fp32", **options) -> RewardModelSource:
    return RewardModelSource(RewardSource("rm", 1.0, options, kind="model", path=str(path)), "rm",
                             SourceContext(1, 10.0, torch.device("cpu"), dtype=ctx_dtype))


def _check(path, **options) -> None:
    check_model_source("reward.sources[0] (rm)", RewardSource("rm", 1.0, options, kind="model", path=str(path)))


def _own_forward(path, prompts, texts, output: int = 0) -> torch.Tensor:
    """What the encoder says through its own forward, one unpadded (prompt, completion) pair at a time."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        return torch.stack([model(**tok(prompt_text(p), t, return_tensors="pt")).logits[0, output]
                            for p, t in zip(prompts, texts)])


def test_tiny_bert_scores_completions_as_a_reward_source(bert_dir, capsys):
    from rlvr.rewards import RewardScorer, reward_metrics

    cfg = RewardConfig(sources=[RewardSource("bert", 1.0, {"normalize": False, "batch_size": 3}, kind="model",
                                             path=str(bert_dir))])
    prompts = [P, P, Q, Q]
    with RewardScorer(cfg, "cpu", "fp32") as scorer:  # what the training loop builds (rlvr.rl.parts)
        src = scorer.sources[0]
        assert not src.last_token and src.input_kind.startswith("text pair")
        first, again = scorer.score(prompts, TEXTS), scorer.score(prompts, TEXTS)
        alone = torch.cat([src.score([p], [t]).rewards for p, t in zip(prompts, TEXTS)])
    banner = capsys.readouterr().out
    assert "bert classifier through its own forward (.logits)" in banner and "normalize: off" in banner
    assert torch.equal(first.rewards, again.rewards)  # deterministic (eval mode: no dropout)
    torch.testing.assert_close(first.rewards, alone, atol=1e-5, rtol=0)  # batch and padding do not matter
    torch.testing.assert_close(first.rewards, _own_forward(bert_dir, prompts, TEXTS), atol=1e-5, rtol=0)
    assert len(set(first.rewards.tolist())) == 4
    metrics = reward_metrics(first)
    assert metrics["reward/bert/mean"] == pytest.approx(first.rewards.mean().item())
    assert metrics["verdict/bert/scored"] == 4.0 and "reward/bert/raw_mean" in metrics


def test_encoder_uses_its_own_chat_template_when_it_has_one(tmp_path):
    path = build_tiny_bert(tmp_path / "rm", chat_template=TEMPLATE)
    src = _source(path, normalize=False)
    assert src.input_kind == "chat template"
    assert render_pair(src.tokenizer, P, "5") == "<user> 2+3 <assistant> 5 "  # the RM's template, not the policy's
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    enc = src.tokenizer("<user> 2+3 <assistant> 5 ", return_tensors="pt")  # [CLS] ... [SEP]
    with torch.no_grad():
        expected = model(**enc).logits[0, 0]
    torch.testing.assert_close(src.score([P], ["5"]).rewards[0], expected, atol=1e-5, rtol=0)


def test_multi_output_head_is_chosen_by_name_or_index(bert3_dir):
    prompts = [P, Q, P]
    texts = TEXTS[:3]
    by_name = _source(bert3_dir, normalize=False, output="helpfulness").score(prompts, texts).rewards
    torch.testing.assert_close(by_name, _own_forward(bert3_dir, prompts, texts, output=1), atol=1e-5, rtol=0)
    by_index = _source(bert3_dir, normalize=False, output=2).score(prompts, texts).rewards
    torch.testing.assert_close(by_index, _own_forward(bert3_dir, prompts, texts, output=2), atol=1e-5, rtol=0)
    _check(bert3_dir, output="verbosity")
    _check(bert3_dir, output=0)


def test_several_outputs_and_none_chosen_fails_at_validation(bert3_dir):
    from rlvr.config_checks import validate

    cfg = TrainConfig()
    cfg.reward.sources = [RewardSource("verifier", 1.0), RewardSource("rm", 0.5, kind="model", path=str(bert3_dir))]
    cfg.algorithm.beta = 0.04
    with pytest.raises(ConfigError) as exc:
        validate(cfg)  # before any model is loaded
    message = str(exc.value)
    assert "\n" not in message and "options.output" in message and "reward.sources[1] (rm)" in message
    assert "0: harmlessness, 1: helpfulness, 2: verbosity" in message
    with pytest.raises(ConfigError, match="options.output='honesty' is not an output"):
        _check(bert3_dir, output="honesty")
    with pytest.raises(ConfigError, match="options.output=3 is not an output"):
        _check(bert3_dir, output=3)
    with pytest.raises(ConfigError, match="3 outputs"):
        _source(bert3_dir, normalize=False)  # the same rule when the source is built directly


@pytest.fixture(scope="module")
def llama_rm_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    tok.pad_token = tok.eos_token  # pad == eos: the case that breaks the model's own pad-based pooling
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.eos_token_id,
                         eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("llama_rm") / "model"
    LlamaForSequenceClassification(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_causal_lm_classifier_is_read_at_the_last_real_token_with_pad_equal_eos(llama_rm_dir):
    src = _source(llama_rm_dir, normalize=False, batch_size=4)
    assert src.last_token and src.input_kind == "chat template"
    together = src.score([P] * 3, TEXTS[:3]).rewards
    alone = torch.cat([src.score([P], [t]).rewards for t in TEXTS[:3]])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    ids = src.tokenizer(render_pair(src.tokenizer, P, TEXTS[0]), return_tensors="pt", add_special_tokens=False)
    assert ids["input_ids"][0, -1].item() == src.tokenizer.eos_token_id  # the template closes the turn with eos
    with torch.no_grad():
        last = src.model.score(src.model.model(**ids).last_hidden_state)[0, -1, 0]
    torch.testing.assert_close(together[0], last, atol=1e-5, rtol=0)


def test_dtype_option_and_the_policy_precision(bert_dir, monkeypatch):
    def dtype(src):
        return next(src.model.parameters()).dtype

    bf16 = _source(bert_dir, normalize=False, dtype="bf16")
    assert dtype(bf16) == torch.bfloat16
    scores = bf16.score([P, Q], TEXTS[:2]).rewards
    assert scores.dtype == torch.float32 and bool(torch.isfinite(scores).all())
    assert dtype(_source(bert_dir, "bf16", normalize=False)) == torch.bfloat16  # follows model.dtype when unset
    assert dtype(_source(bert_dir, "bf16", normalize=False, dtype="auto")) == torch.float32  # the checkpoint's
    assert dtype(_source(bert_dir, "bf16", normalize=False, dtype="fp32")) == torch.float32
    with pytest.raises(ConfigError) as exc:
        _source(bert_dir, normalize=False, dtype="fp16")  # the learner's device here is the CPU
    assert "\n" not in str(exc.value) and "options.dtype=bf16 or options.dtype=fp32" in str(exc.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="fp16 weights .*on the CPU"):
        _check(bert_dir, dtype="fp16")
    with pytest.raises(ConfigError, match="options.dtype='fp8'; choose one of null, auto, fp32, bf16, fp16"):
        _check(bert_dir, dtype="fp8")


def test_running_statistics_are_estimated_then_frozen():
    stats = RunningScoreStats(4)
    assert not stats.update(torch.tensor([1.0, 2.0, 3.0]))
    assert stats.mean == pytest.approx(2.0) and stats.std == pytest.approx(math.sqrt(2 / 3))
    assert stats.update(torch.tensor([4.0, 100.0]))  # only 4.0 counts: the limit is reached
    assert stats.frozen and stats.count == 4
    assert stats.mean == pytest.approx(2.5) and stats.std == pytest.approx(math.sqrt(1.25))
    assert not stats.update(torch.tensor([-50.0]))
    assert stats.mean == pytest.approx(2.5)


def test_normalize_auto_uses_running_statistics_without_saved_ones(bert_dir, capsys):
    assert not (bert_dir / "reward_stats.json").exists()
    src = _source(bert_dir, normalize="auto", running_count=4, clip=0)
    assert "normalize: running statistics over the first 4 scores, then frozen" in capsys.readouterr().out
    prompts = [P, Q, P]
    first = src.score(prompts, TEXTS[:3])
    raw = first.raw.double()
    torch.testing.assert_close(first.rewards, ((raw - raw.mean()) / raw.std(unbiased=False)).float())
    second = src.score([Q, Q], TEXTS[2:])  # one more score reaches the limit: frozen from here on
    assert "running statistics frozen after 4 scores" in capsys.readouterr().out
    seen = torch.cat([first.raw, second.raw[:1]]).double()
    expected = ((second.raw.double() - seen.mean()) / seen.std(unbiased=False)).float()
    torch.testing.assert_close(second.rewards, expected)
    torch.testing.assert_close(src.score([Q, Q], TEXTS[2:]).rewards, expected)  # frozen


def test_normalize_auto_prefers_saved_statistics_and_true_requires_them(tmp_path, capsys):
    path = build_tiny_bert(tmp_path / "rm")
    with pytest.raises(ConfigError, match="has no reward_stats.json.*normalize=auto"):
        _check(path, normalize=True)
    with pytest.raises(ConfigError, match="has no reward_stats.json"):
        _source(path, normalize=True)
    raw = _source(path, normalize=False).score([P, Q], TEXTS[:2]).rewards
    (path / "reward_stats.json").write_text(json.dumps({"mean": 0.25, "std": 0.5}))
    capsys.readouterr()
    src = _source(path)  # normalize: auto by default
    assert "normalize: the saved reward_stats.json" in capsys.readouterr().out
    torch.testing.assert_close(src.score([P, Q], TEXTS[:2]).rewards, ((raw - 0.25) / 0.5).clamp(-5, 5))
    with pytest.raises(ConfigError, match="options.normalize='maybe'; choose one of true, false, auto"):
        _check(path, normalize="maybe")
    with pytest.raises(ConfigError, match="unknown option.*normalise"):
        _check(path, normalise=False)


def test_remote_code_needed_but_off_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "custom"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({
        "model_type": "my_custom_rm", "num_labels": 1,
        "auto_map": {"AutoConfig": "modeling_custom.CustomConfig",
                     "AutoModelForSequenceClassification": "modeling_custom.CustomRewardModel"}}))
    for build in (_check, _source):
        with pytest.raises(ConfigError) as exc:
            build(path)
        assert "\n" not in str(exc.value) and "options.trust_remote_code=true" in str(exc.value)
    _check(path, trust_remote_code=True)  # allowed: validation passes
    with pytest.raises(Exception):  # the code it points at does not exist; the source says it was allowed first
        _source(path, trust_remote_code=True)
    assert "trust_remote_code is on: Python code from" in capsys.readouterr().out


def test_rlvr_train_with_a_third_party_encoder_reward_model(tmp_path, train_env):  # noqa: F811
    rm = build_tiny_bert(tmp_path / "bert_rm")
    run_dir = tmp_path / "run"
    cmd = train_command(run_dir, "trainer.threads=1", "model.sft.steps=0", "trainer.total_steps=2",
                        "trainer.prompts_per_step=2", "trainer.micro_batch_size=4", "trainer.eval.every=2",
                        "data.eval_size=2", "trainer.save_every=0", "algorithm.beta=0.04",
                        f"reward.sources=[{{name: verifier, weight: 1.0}}, {{name: bert, kind: model, weight: 0.5, "
                        f"path: '{rm}', options: {{running_count: 8}}}}]")
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "bert classifier through its own forward" in proc.stdout
    assert "running statistics over the first 8 scores" in proc.stdout
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for row in steps:
        assert math.isfinite(row["reward/bert/mean"]) and math.isfinite(row["reward/bert/raw_mean"])
        assert row["verdict/bert/scored"] == 8.0
