"""rlvr-rm: the loss and metrics on hand-computed numbers, the score's padding invariance, saving
and loading, frozen features, the configs, end-to-end runs with resume, and bad input."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr.data.chat import DataError
from rlvr.errors import UserError
from rlvr.preference import load_preferences, prompt_key
from rlvr.rm.config import RMConfig, register_rm_schema, validate_rm
from rlvr.rm.data import load_pair_sets, split_by_prompt
from rlvr.rm.encode import collate, encode_pairs
from rlvr.rm.loss import bradley_terry_loss
from rlvr.rm.metrics import pair_metrics, pearson, reward_stats
from rlvr.rm.model import STATS_FILE, build_reward_model, head_scores, pooled_features, save_reward_model, \
    sequence_scores

from .conftest import CONF, REPO
from .test_config import experiment_root

register_rm_schema()


def rows(n: int = 24) -> list[dict]:
    """Synthetic ranked rows: the polite answer is best, the curt one worst (learnable from the text)."""
    return [{"id": f"r{i}", "prompt": f"What is {i % 7}+{i % 5}?",
             "answers": [{"text": f"Hi! It is {i % 7 + i % 5}.", "rank": 0, "score": 1.0},
                         {"text": f"It is {i % 7 + i % 5}.", "rank": 1, "score": 0.5},
                         {"text": "no", "rank": 2}]} for i in range(n)]


def write_rows(path: Path, n: int = 24) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from rlvr.models import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="module")
def reward_model(tiny_model_dir, tokenizer):
    model = build_reward_model(tiny_model_dir, tokenizer, seed=1).eval()
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))  # not a near-zero head
    return model


def test_loss_on_hand_computed_numbers():
    chosen, rejected = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, -1.0])
    margin = torch.tensor([0.0, 0.5, 1.0])
    got = bradley_terry_loss(chosen, rejected, margin, center_coef=0.1)
    want = [math.log1p(math.exp(-1.0)) + 0.1 * 1.0,  # -log sigmoid(1) + 0.1 * (1 + 0)^2
            math.log1p(math.exp(0.5)) + 0.0,  # -log sigmoid(0 - 0 - 0.5)
            math.log1p(math.exp(-2.0)) + 0.1 * 1.0]  # -log sigmoid(3 - 1) + 0.1 * (2 - 1)^2
    assert got.tolist() == pytest.approx(want, abs=1e-6)
    assert bradley_terry_loss(chosen, rejected).tolist() == pytest.approx(
        [math.log1p(math.exp(-1.0)), math.log(2.0), math.log1p(math.exp(-3.0))], abs=1e-6)


def test_metrics_on_hand_computed_numbers():
    chosen, rejected = torch.tensor([2.0, 1.0, 0.0, 5.0]), torch.tensor([1.0, 1.0, 3.0, 4.0])
    c_len, r_len = torch.tensor([1.0, 5.0, 9.0, 4.0]), torch.tensor([4.0, 5.0, 2.0, 8.0])
    m = pair_metrics(chosen, rejected, c_len, r_len)
    assert m["accuracy"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)  # a tie counts half
    assert m["margin"] == pytest.approx((1 + 0 - 3 + 1) / 4)
    assert (m["reward_min"], m["reward_max"], m["reward_mean"]) == (0.0, 5.0, pytest.approx(17 / 8))
    assert m["acc_chosen_shorter"] == 1.0 and m["acc_chosen_longer"] == 0.0 and m["length_bias_gap"] == 1.0
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert math.isnan(pearson(torch.ones(3), torch.tensor([1.0, 2.0, 3.0])))
    s = reward_stats(torch.arange(101, dtype=torch.float32))
    assert (s["mean"], s["min"], s["max"], s["p50"], s["p05"], s["p99"], s["count"]) == (50, 0, 100, 50, 5, 99, 101)


def test_score_ignores_padding_amount_side_and_pad_equal_eos(reward_model, tokenizer):
    seqs = [tokenizer("<|user|>1+2<|assistant|>It is 3.<|end|>", add_special_tokens=False)["input_ids"],
            tokenizer("<|user|>4+4<|assistant|>Hi! It is 8, I think.<|end|>", add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        alone = [float(sequence_scores(reward_model, collate([s], tokenizer.pad_token_id))) for s in seqs]
        for side in ("right", "left"):
            for pad_to in (0, 40, 77):
                for pad_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):  # pad == eos: same scores
                    got = sequence_scores(reward_model, collate(seqs, pad_id, side, pad_to)).tolist()
                    assert got == pytest.approx(alone, abs=1e-5), (side, pad_to, pad_id)
        # the head on the pooled features is the same number (what a frozen backbone trains on)
        batch = collate(seqs, tokenizer.eos_token_id, "left", 50)
        assert head_scores(reward_model, pooled_features(reward_model, batch)).tolist() == pytest.approx(alone, abs=1e-5)
        # with pad != eos and right padding, transformers' own pooling reads the same token
        batch = collate(seqs, tokenizer.pad_token_id, "right")
        hf = reward_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        assert hf.tolist() == pytest.approx(alone, abs=1e-5)


def test_save_load_same_scores_and_stats(tmp_path, reward_model, tokenizer):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    stats = reward_stats(torch.tensor([0.0, 1.0, 2.0]))
    out = save_reward_model(reward_model, tokenizer, tmp_path / "rm", stats)
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert loaded.config.num_labels == 1 and loaded.config.pad_token_id == tok.pad_token_id
    enc = encode_pairs(tok, load_preferences(rows(4)), 256)
    batch = collate(enc.chosen + enc.rejected, tok.pad_token_id)
    with torch.no_grad():
        assert sequence_scores(loaded, batch).tolist() == pytest.approx(sequence_scores(reward_model, batch).tolist(),
                                                                        abs=1e-6)
    saved = json.loads((out / STATS_FILE).read_text())
    assert {"mean", "std", "min", "max", "p01", "p05", "p50", "p95", "p99", "count", "rlvr_version",
            "rlvr_commit"} <= set(saved)
    assert saved["count"] == 3 and saved["mean"] == pytest.approx(1.0)


def test_encode_keeps_the_end_of_long_inputs(tokenizer):
    long = [{"prompt": "x" * 100, "chosen": "good answer", "rejected": "bad answer"}]
    enc = encode_pairs(tokenizer, load_preferences(long), 20)
    assert enc.truncated == 2 and enc.longest > 100 and all(len(s) == 20 for s in enc.chosen + enc.rejected)
    assert tokenizer.decode(enc.chosen[0]).endswith("good answer<|end|>")


def test_split_by_prompt_never_leaks():
    ranked = load_preferences(rows(40))
    train, held = split_by_prompt(ranked, 0.25, seed=3)
    assert len(train) + len(held) == len(ranked) and len(held) > 0
    assert not {prompt_key(p) for p in train.pairs} & {prompt_key(p) for p in held.pairs}
    again = split_by_prompt(ranked, 0.25, seed=3)[1]
    assert [p.uid for p in again.pairs] == [p.uid for p in held.pairs]


def test_builtin_task_source_keeps_its_held_out_prompts_apart():
    pytest.importorskip("rlvr.data.preference_task")
    from rlvr.rm.config import RMDataConfig

    sets = load_pair_sets(RMDataConfig(source="preference_task", num_prompts=60, num_eval_prompts=20))
    assert sets.train.rows_read == 60 and sets.evals["heldout"].rows_read == 20
    assert sets.eval_prompts_in_train == 0 and len(sets.train) > 60


def _compose(*overrides: str) -> RMConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="rm", overrides=list(overrides))
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


RM_EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if experiment_root(p) == "rm.yaml")


@pytest.mark.parametrize("override", ["model=local", *[f"+experiment={e}" for e in RM_EXPERIMENTS]])
def test_rm_configs_compose_and_validate(override):
    cfg = _compose(override, "data.path=/data/prefs.jsonl", "model.path=/models/x")
    assert isinstance(cfg, RMConfig)
    validate_rm(cfg)


def test_rm_config_errors_name_the_fix():
    assert "tiny_rm" in RM_EXPERIMENTS
    with pytest.raises(Exception, match="loss_scale"):
        _compose("loss.loss_scale=2")  # unknown keys are composition errors
    for overrides, fix in [([], "needs data.path"), (["data.path=x", "trainer.micro_batch_size=5"], "multiple of"),
                           (["data.path=x", "data.source=hub"], "unknown data.source 'hub'; registered: file"),
                           (["data.path=x", "data.eval_fraction=0"], "data.eval_fraction=0"),
                           (["data.path=x", "model.sft.steps=5"], "run rlvr-sft first"),
                           (["+experiment=tiny_rm", "data.length_bias=1.5"], "a probability in"),
                           (["data.path=x", "trainer.backend=deepspeed", "trainer.freeze_backbone=true"],
                            "use trainer.backend=torch"),
                           (["data.path=x", "model.lora.rank=4", "trainer.freeze_backbone=true"], "choose one"),
                           (["data.path=x", "trainer.backend=ds"], "unknown trainer.backend 'ds'"),
                           (["data.path=x", "model.dtype=fp16"], "needs loss scaling")]:
        with pytest.raises(UserError, match=fix):  # ConfigError, or PrecisionError for the model.* checks
            validate_rm(_compose(*overrides))


def _rm(run_dir: Path, env: dict, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rlvr.rm.train", f"hydra.run.dir={run_dir}", "model.hidden_size=32",
           "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64", "trainer.batch_size=8",
           "trainer.micro_batch_size=4", "trainer.threads=1", "trainer.optim.lr=1e-3", "data.eval_fraction=0.25",
           "logger.console_every=1", *overrides]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_rlvr_rm_end_to_end_with_resume(tmp_path, train_env):
    from transformers import AutoModelForSequenceClassification

    data, run_dir = write_rows(tmp_path / "prefs.jsonl"), tmp_path / "run"
    proc = _rm(run_dir, train_env, f"data.path={data}", "trainer.save_every=3", "trainer.eval_every=3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    # 24 rows x 3 pairs; 6 of 24 prompts held out -> 54 training pairs -> 7 steps of 8
    assert summary["pairs"] == {"train": 54, "heldout": 18} and summary["steps"] == 7
    assert 0.0 <= summary["pairwise_accuracy"] <= 1.0 and "length_bias_gap" in summary
    assert summary["rows_read"] == 24 and summary["dropped"] == {} and summary["model_dir"] == str(run_dir / "model")
    assert summary["reward_stats"]["count"] == 18 * 3  # distinct training answers
    rows_ = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_ if "train/loss" in r] == list(range(1, 8))
    assert [r["step"] for r in rows_ if "eval/heldout/accuracy" in r] == [0, 3, 6, 7]
    for key in ("train/accuracy", "train/margin", "train/reward_std", "train/length_bias_gap"):
        assert key in rows_[1]
    for key in ("accuracy", "acc_chosen_shorter", "acc_chosen_longer", "reward_length_corr", "reward_max"):
        assert f"eval/heldout/{key}" in rows_[-1] and f"eval/train/{key}" in rows_[-1]
    assert (run_dir / "curve.png").is_file() and (run_dir / "config.yaml").is_file()
    assert (run_dir / "model" / STATS_FILE).is_file()
    assert AutoModelForSequenceClassification.from_pretrained(summary["model_dir"]).config.num_labels == 1
    resumed = _rm(run_dir, train_env, f"data.path={data}", "trainer.save_every=3", "trainer.eval_every=3",
                  "trainer.epochs=2", "resume=auto")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and json.loads((run_dir / "summary.json").read_text())[
        "resumed_from_step"] == 7
    rows_ = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_ if "train/loss" in r] == list(range(1, 15))


def test_frozen_backbone_trains_only_the_head(tmp_path, tiny_model_dir):
    from rlvr.rm.run import run

    cfg = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="test")))
    cfg.model.path, cfg.data.path = str(tiny_model_dir), str(write_rows(tmp_path / "p.jsonl", 40))
    cfg.data.eval_fraction, cfg.trainer.freeze_backbone, cfg.trainer.epochs = 0.25, True, 3
    cfg.trainer.optim.lr, cfg.logger.console_every = 1e-2, 0
    summary = run(cfg, tmp_path / "run")
    from transformers import AutoModelForSequenceClassification

    before = build_reward_model(tiny_model_dir, load_tok(tiny_model_dir), seed=cfg.trainer.seed)
    after = AutoModelForSequenceClassification.from_pretrained(summary["model_dir"])
    moved = {n for n, p in after.state_dict().items() if not torch.equal(p, before.state_dict()[n])}
    assert moved == {"score.weight"} and summary["freeze_backbone"]
    assert 0.0 <= summary["train_accuracy"] <= 1.0 and set(summary["eval"]) == {"heldout"}


def load_tok(path):
    from rlvr.models import load_tokenizer

    return load_tokenizer(path)


def test_data_errors(tmp_path, tiny_model_dir):
    from rlvr.rm.run import run

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    cfg = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="test")))
    cfg.model.path, cfg.data.path = str(tiny_model_dir), str(bad)
    with pytest.raises(DataError, match="no preference pairs .* fields found: answer, question"):
        run(cfg, tmp_path / "r1")
    cfg.data.path = str(write_rows(tmp_path / "one.jsonl", 1))
    with pytest.raises(DataError, match="at least 2"):
        run(cfg, tmp_path / "r2")


def test_bad_input_exits_2_with_one_line(tmp_path, train_env):
    proc = _rm(tmp_path / "run", train_env, f"data.path={tmp_path / 'missing.jsonl'}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: preference data {tmp_path / 'missing.jsonl'}: no such file"]
    proc = _rm(tmp_path / "run2", train_env, f"data.path={write_rows(tmp_path / 'ok.jsonl')}", "model=local",
               f"model.path={tmp_path}")
    assert proc.returncode == 2 and "no config.json there" in proc.stderr


def test_each_distinct_answer_is_scored_once_with_the_same_result(reward_model, tokenizer):
    from rlvr.rm.scorers import SequenceScorer, unique_sequences

    distinct, where = unique_sequences([[1, 2], [3], [1, 2], [4, 5, 6], [3]])
    assert distinct == [[1, 2], [3], [4, 5, 6]] and where.tolist() == [0, 1, 0, 2, 1]
    enc = encode_pairs(tokenizer, load_preferences(rows(3)), 256)  # 3 answers -> 3 pairs per prompt
    scorer = SequenceScorer(reward_model, {"s": enc}, tokenizer.pad_token_id, torch.device("cpu"), None)
    with torch.no_grad():
        r_c, r_r = scorer("s", list(range(len(enc))))
        one_by_one = [scorer("s", [i]) for i in range(len(enc))]
    assert r_c.tolist() == pytest.approx([float(c) for c, _ in one_by_one], abs=1e-5)
    assert r_r.tolist() == pytest.approx([float(r) for _, r in one_by_one], abs=1e-5)


def test_batches_hold_whole_prompts_and_cover_every_pair(tokenizer):
    from rlvr.rm.trainer import RMTrainer

    enc = encode_pairs(tokenizer, load_preferences(rows(10)), 256)  # 10 prompts x 3 pairs
    assert [len(g) for g in enc.groups] == [3] * 10
    cfg = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="t")))
    cfg.trainer.batch_size = 6
    trainer = RMTrainer(cfg, None, None, {"train": enc}, 10)
    epoch = [trainer.batch_indices(s) for s in range(1, 6)]
    assert sorted(i for b in epoch for i in b) == list(range(30))
    group_of = {i: g for g, members in enumerate(enc.groups) for i in members}
    assert all(len({group_of[i] for i in b}) == 2 for b in epoch)  # two whole prompts per batch of 6
    assert trainer.batch_indices(6) != epoch[0] or trainer.batch_indices(7) != epoch[1]  # epoch 2: a new order


def _lora_cfg(tmp_path, tiny_model_dir, **trainer):
    cfg = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="test")))
    cfg.model.path, cfg.data.path = str(tiny_model_dir), str(write_rows(tmp_path / "p.jsonl", 24))
    cfg.data.eval_fraction, cfg.trainer.batch_size, cfg.trainer.micro_batch_size = 0.25, 8, 4
    cfg.model.lora.rank, cfg.model.lora.alpha = 4, 8.0
    cfg.trainer.gradient_checkpointing, cfg.trainer.save_every, cfg.trainer.optim.lr = True, 3, 1e-2
    cfg.logger.console_every = 0
    for key, value in trainer.items():
        setattr(cfg.trainer, key, value)
    return cfg


def test_lora_trains_adapters_and_the_head_and_saves_a_plain_merged_model(tmp_path, tiny_model_dir, capsys):
    """model.lora.rank > 0: checkpoints hold the adapter (and the head); model/ is the merged classifier, which
    plain from_pretrained loads and which scores exactly as the trained adapter did; only the adapted linear
    layers and the head differ from the starting model."""
    from transformers import AutoModelForSequenceClassification

    from rlvr.checkpoint import latest_checkpoint
    from rlvr.models.lora import is_adapter_dir
    from rlvr.rm.run import run

    cfg = _lora_cfg(tmp_path, tiny_model_dir)
    summary = run(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert "reward model: LoRA rank 4, alpha 8 on down_proj" in out and "(+ score trained whole)" in out
    assert "gradient checkpointing on" in out
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert is_adapter_dir(checkpoint) and not (checkpoint / "model.safetensors").exists()
    model_dir = Path(summary["model_dir"])
    assert not is_adapter_dir(model_dir) and (model_dir / STATS_FILE).is_file()
    merged = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()  # no PEFT needed
    start = build_reward_model(tiny_model_dir, load_tok(tiny_model_dir), seed=cfg.trainer.seed).state_dict()
    moved = {n for n, p in merged.state_dict().items() if not torch.equal(p, start[n])}
    assert "score.weight" in moved and any("q_proj" in n for n in moved)
    assert all(n == "score.weight" or n.endswith("proj.weight") for n in moved), moved  # no norm, no embedding
    # its scores are the trained model's: the statistics of the training answers computed in the run
    tok = load_tok(model_dir)
    sets = load_pair_sets(cfg.data)
    enc = encode_pairs(tok, sets.train, 256)
    with torch.no_grad():
        rewards = torch.cat([sequence_scores(merged, collate([s], tok.pad_token_id))
                             for s in {tuple(x): x for x in enc.chosen + enc.rejected}.values()])
    assert rewards.mean().item() == pytest.approx(summary["reward_stats"]["mean"], abs=1e-5)


def test_reward_model_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir, tmp_path):
    from rlvr.rm.run import load_reward_policy

    cfg = _lora_cfg(tmp_path, tiny_model_dir)
    cfg.model.lora.rank = 0
    tok = load_tok(tiny_model_dir)
    batch = collate(encode_pairs(tok, load_preferences(rows(2)), 256).chosen, tok.pad_token_id)
    grads = []
    for on in (False, True):
        cfg.trainer.gradient_checkpointing = on
        model = load_reward_policy(cfg, tiny_model_dir, tok).train()
        assert model.model.gradient_checkpointing is on
        sequence_scores(model, batch).pow(2).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7)
