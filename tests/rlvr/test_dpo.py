"""rlvr-dpo: the loss on hand-computed numbers, whole-answer log-probs, the two reference modes, the config and
its model block, a few-second end-to-end run, LoRA, a run killed after a checkpoint and resumed, and bad input.
Its torchrun runs are in test_stage_distributed_runs.py."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr.config import ConfigError
from rlvr.errors import UserError
from rlvr.dpo.config import DPOConfig, register_dpo_schema, validate_dpo
from rlvr.dpo.loss import dpo_loss, pair_metrics
from rlvr.dpo.pairs import fit_pairs, sequence_logprobs
from rlvr.preference import Pair

from .conftest import CONF, REPO, kill_after

register_dpo_schema()


def _softplus(x: float) -> float:  # -log sigmoid(-x)
    return math.log1p(math.exp(x))


def test_loss_on_hand_computed_numbers():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-1.0, -2.0, -1.5, -1.5))
    terms = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # rewards 0.5 * 0.5 = 0.25 and 0.5 * -0.5 = -0.25; z = 0.5; loss = -log sigmoid(0.5)
    assert terms.chosen_rewards.item() == pytest.approx(0.25) and terms.rejected_rewards.item() == pytest.approx(-0.25)
    assert terms.loss.item() == pytest.approx(_softplus(-0.5))  # 0.474077
    smoothed = dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1)
    assert smoothed.loss.item() == pytest.approx(0.9 * _softplus(-0.5) + 0.1 * _softplus(0.5))  # 0.524077
    with_sft = dpo_loss(pc, pr, rc, rr, beta=0.5, chosen_nll=torch.tensor([2.0]), sft_coef=0.5)
    assert with_sft.loss.item() == pytest.approx(_softplus(-0.5) + 1.0)
    assert dpo_loss(pc, pr, pc, pr, beta=0.1).loss.item() == pytest.approx(math.log(2))  # policy == reference


def test_loss_gradient_matches_the_formula():
    pc = torch.tensor([-1.0], requires_grad=True)
    beta, eps = 0.5, 0.1
    terms = dpo_loss(pc, torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5]), beta, eps)
    terms.loss.sum().backward()
    z = 0.5
    sig = 1 / (1 + math.exp(-z))
    assert pc.grad.item() == pytest.approx(-beta * (1 - eps) * (1 - sig) + beta * eps * sig)


def test_pair_metrics():
    m = pair_metrics(torch.tensor([0.3, -0.1, 0.2]), torch.tensor([0.1, 0.1, 0.2]))
    assert m["reward_margin"] == pytest.approx(0.0, abs=1e-6)  # +0.2, -0.2, 0
    assert m["reward_accuracy"] == pytest.approx(1 / 3)  # a tie is not a win
    assert m["reward_chosen"] == pytest.approx(0.4 / 3) and pair_metrics(torch.zeros(0), torch.zeros(0)) == {}


def _pairs(n: int = 6) -> list[Pair]:
    return [Pair(uid=f"p{i}", messages=[{"role": "user", "content": f"What is {i}+1?"}],
                 chosen=f"Hi! {i}+1 is {i + 1}.", rejected="no" * (i + 1)) for i in range(n)]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from rlvr.models import load_model, load_tokenizer

    return load_model(tiny_model_dir).eval(), load_tokenizer(tiny_model_dir)


def test_sequence_logprobs_do_not_depend_on_batch_padding(tiny):
    model, tok = tiny
    pairs = _pairs()
    together = sequence_logprobs(model, tok, pairs)
    for i, pair in enumerate(pairs):
        alone = sequence_logprobs(model, tok, [pair])
        assert alone.chosen.item() == pytest.approx(together.chosen[i].item(), abs=1e-4)
        assert alone.rejected.item() == pytest.approx(together.rejected[i].item(), abs=1e-4)
    assert together.chosen_tokens.tolist() == [len(p.chosen) + 1 for p in pairs]  # characters + EOS


def test_precomputed_and_online_references_agree(tiny):
    from rlvr.dpo.reference import REFERENCES

    model, tok = tiny
    pairs = _pairs()
    pre = REFERENCES.lookup("precompute")(model, tok, 4, None, torch.device("cpu"))
    pre.prepare(pairs)
    pre.release()
    online = REFERENCES.lookup("online")(model, tok, 4, None, torch.device("cpu"))
    for got, want in zip(pre(pairs[1:3]), online(pairs[1:3])):
        assert torch.allclose(got, want, atol=1e-4)
    with pytest.raises(RuntimeError, match="prepare"):
        pre([Pair("x", [{"role": "user", "content": "?"}], "a", "b")])


def test_fit_pairs_drops_and_counts_long_pairs(tiny):
    _, tok = tiny
    kept, dropped = fit_pairs(tok, _pairs(6), max_tokens=24)
    assert dropped > 0 and len(kept) + dropped == 6
    assert all(len(p.rejected) <= 12 for p in kept)


def _compose(*overrides: str, demo: bool = True) -> DPOConfig:
    """rlvr-dpo's config; ``demo``: on top of +experiment=tiny_dpo (the built-in task)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="dpo", overrides=["+experiment=tiny_dpo"] * demo + list(overrides))
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def test_root_config_assumes_no_task_and_the_demo_is_a_preset():
    root = _compose(demo=False)
    assert root.policy.train_overrides == [] and root.data.source == "file"
    with pytest.raises(ConfigError, match="needs data.path"):  # your pairs, named
        validate_dpo(root)
    cfg = _compose()
    validate_dpo(cfg)
    assert cfg.policy.train_overrides == ["+experiment=tiny_rm_grpo"] and cfg.data.source == "preference_task"


@pytest.mark.parametrize("overrides, fix", [
    (["loss.beta=0"], "beta > 0"),
    (["loss.label_smoothing=0.5"], r"\[0, 0.5\)"),
    (["trainer.batch_size=10", "trainer.micro_batch_size=4"], "multiple of trainer.micro_batch_size"),
    (["trainer.reference=cached"], "unknown trainer.reference 'cached'; registered: online, precompute"),
    (["data.source=file"], "needs data.path"),
    (["data.source=hub"], "unknown data.source 'hub'"),
    (["data.max_tokens=2"], "data.max_tokens >= 8"),
    (["data.length_bias=1.5"], r"data.length_bias=1.5 is a probability in \[0, 1\]"),
])
def test_bad_settings_name_the_fix(overrides, fix):
    with pytest.raises(ConfigError, match=fix):
        validate_dpo(_compose(*overrides))


def test_model_keys_set_in_rlvr_dpo_win_over_those_of_train_overrides():
    """The policy's model.* is rlvr-dpo's own block merged onto policy.train_overrides' (non-default keys win)."""
    from rlvr.dpo.config import merged_model
    from rlvr.dpo.start import compose_train_config

    train = compose_train_config(["+experiment=tiny_rm_grpo", "model.attn_implementation=eager",
                                  "model.lora.alpha=4", "model.dtype=bf16"])
    own = _compose("model.lora.rank=8", "model.weights_dtype=bf16", "model.dtype=bf16").model
    m = merged_model(own, train.model)
    assert (m.lora.rank, m.lora.alpha, m.weights_dtype, m.dtype) == (8, 4.0, "bf16", "bf16")
    assert m.attn_implementation == "eager" and m.sft.steps == 400 and m.path is None  # train_overrides' values
    assert merged_model(_compose().model, train.model) == train.model  # nothing set here: train_overrides' block
    with pytest.raises(UserError, match="model.dtype=fp16"):
        validate_dpo(_compose("model.dtype=fp16"))
    with pytest.raises(ConfigError, match="into 4 equal per-rank shares; set trainer.batch_size to a multiple of 4"):
        validate_dpo(_compose("trainer.batch_size=6", "trainer.micro_batch_size=3", "trainer.backend=deepspeed"), 4)
    with pytest.raises(ConfigError, match="trainer.backend=torch runs one process"):
        validate_dpo(_compose(), 2)


def test_bad_train_overrides_name_the_key():
    from rlvr.dpo.start import compose_train_config

    with pytest.raises(ConfigError, match="policy.train_overrides"):
        compose_train_config(["trainer.learning_rate=1"])
    assert compose_train_config(["+experiment=tiny_rm_grpo"]).data.source == "preference"


TRAIN_OVERRIDES = ("policy.train_overrides=['data=preference','data.preference.num_train=64','model.sft.steps=0',"
                   "'data.eval_size=8','rollout.max_new_tokens=24','reward.workers=1']")


def _dpo_command(run_dir, model_dir, *overrides):
    return [sys.executable, "-m", "rlvr.dpo.train", "+experiment=tiny_dpo", f"hydra.run.dir={run_dir}",
            f"policy.path={model_dir}",
            TRAIN_OVERRIDES, "data.num_prompts=12", "data.num_eval_prompts=4", "trainer.max_steps=3",
            "trainer.batch_size=8", "trainer.micro_batch_size=4", "trainer.kl_samples=1", "trainer.eval_every=2",
            "logger.console_every=1", *overrides]


def _dpo(run_dir, env, model_dir, *overrides):
    return subprocess.run(_dpo_command(run_dir, model_dir, *overrides), env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.timeout(600)
def test_end_to_end_run_writes_metrics_model_and_summary(tmp_path, train_env, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    run_dir = tmp_path / "dpo"
    proc = _dpo(run_dir, train_env, tiny_model_dir, "trainer.reference=online", "loss.sft_coef=0.1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "dpo/loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert steps[0]["dpo/loss"] == pytest.approx(math.log(2) + 0.1 * steps[0]["dpo/chosen_nll"], rel=1e-3)
    evals = [r for r in rows if "eval/pass@1" in r]
    assert [r["step"] for r in evals] == [0, 2, 3] and "eval/kl" in evals[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("true_preference_before", "true_preference_after", "kl", "wall_s", "heldout_reward_accuracy_after"):
        assert summary[key] is not None, key
    assert 0.0 <= summary["true_preference_after"] <= 1.0 and summary["steps"] == 3
    # the true preference is the run's named truth (data=preference sets reward.truth), not a switch on the task
    assert summary["truth"] == {"source": "preference_rule", "name": "true_preference"}
    assert summary["heldout_pass_after"] is not None and "eval/reward/preference_rule/mean" in evals[-1]
    AutoModelForCausalLM.from_pretrained(summary["model_dir"])
    assert "true preference" in proc.stdout and (run_dir / "config.yaml").is_file()


SMALL = ("trainer.threads=1", "trainer.optim.lr=1e-2", "trainer.optim.warmup_steps=0")


def test_lora_trains_only_the_adapter_against_the_adapter_disabled_policy(tmp_path, tiny_model_dir, capsys):
    """model.lora.rank > 0 (online reference, gradient checkpointing): the reference is the policy with its adapter
    off, so the first step's loss is log 2 + the SFT term; model/ is the merged policy, which differs from the start
    only in the adapted projections and is exactly what was trained (the same KL to the start)."""
    from transformers import AutoModelForCausalLM

    from rlvr.dpo.policy_eval import sampled_kl
    from rlvr.dpo.run import run
    from rlvr.dpo.start import policy_config, starting_policy
    from rlvr.models import load_model
    from rlvr.models.lora import is_adapter_dir

    cfg = _compose(f"policy.path={tiny_model_dir}", TRAIN_OVERRIDES, "data.num_prompts=12", "data.num_eval_prompts=4",
                   "trainer.max_steps=3", "trainer.batch_size=8", "trainer.micro_batch_size=4", "trainer.kl_samples=2",
                   "trainer.eval_every=0", "logger.console_every=1", "trainer.reference=online", "model.lora.rank=4",
                   "model.lora.alpha=8", "trainer.gradient_checkpointing=true", *SMALL)
    validate_dpo(cfg)
    summary = run(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert "policy: LoRA rank 4" in out and "gradient checkpointing on" in out
    assert "reference log-probs: the policy with its adapter disabled (no copy)" in out
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if "dpo/loss" in r)
    assert first["dpo/loss"] == pytest.approx(math.log(2) + first["dpo/chosen_nll"], rel=1e-4)  # sft_coef 1
    assert summary["lora_rank"] == 4 and not is_adapter_dir(summary["model_dir"])
    merged, start = AutoModelForCausalLM.from_pretrained(summary["model_dir"]), load_model(tiny_model_dir)
    moved = {n for n, p in merged.state_dict().items() if not torch.equal(p, start.state_dict()[n])}
    assert moved and all(n.endswith("proj.weight") for n in moved), moved
    train_cfg = policy_config(cfg)
    _, tok, prompts = starting_policy(cfg, train_cfg)
    kl = sampled_kl(merged, start, tok, prompts, 2, train_cfg.rollout.max_new_tokens, seed=cfg.trainer.seed)
    assert kl["kl"] == pytest.approx(summary["kl"], abs=1e-5) and summary["kl"] != 0


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(600)
def test_sigkill_after_a_checkpoint_and_resume_reproduce_the_uninterrupted_run(tmp_path, train_env, tiny_model_dir):
    """12 steps (past an epoch of 9), a checkpoint every 2, precomputed reference log-probs (kept in the checkpoint:
    the resumed policy has moved, it could not recompute them): every logged value equals the uninterrupted run's."""
    args = ("trainer.max_steps=12", "trainer.epochs=2", "trainer.save_every=2", "trainer.eval_every=4", *SMALL)
    whole = _dpo(tmp_path / "whole", train_env, tiny_model_dir, *args)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    killed = tmp_path / "killed"
    cmd = _dpo_command(killed, tiny_model_dir, *args)
    marker = killed / "checkpoints" / "step_000002" / "COMPLETE"
    kill_after(cmd, train_env, marker)
    assert marker.exists() and not (killed / "summary.json").exists()
    resumed = subprocess.run(cmd + ["resume=auto"], env=train_env, cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["resumed_from_step"] >= 2 and summary["steps"] == 12
    want, got = _rows(tmp_path / "whole"), _rows(killed)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    assert [r["step"] for r in want if "eval/pass@1" in r] == [0, 4, 8, 12]
    for w, g in zip(want, got):
        assert w.keys() == g.keys(), w["step"]
        for key, value in w.items():
            assert (math.isclose(value, g[key], abs_tol=1e-6) if isinstance(value, float) else value == g[key]), \
                (w["step"], key, value, g[key])
    latest = sorted((killed / "checkpoints").glob("step_*"))[-1]
    assert latest.name == "step_000012" and len(list((killed / "checkpoints").glob("step_*"))) == 2  # keep 2


def test_bad_input_is_one_line_and_exit_2(tmp_path, train_env, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "hi", "answer": "yo"}) + "\n")
    proc = _dpo(tmp_path / "bad", train_env, tiny_model_dir, "data.source=file", f"data.path={bad}",
                f"data.eval_path={bad}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no preference pairs") and "answer, question" in last
    proc = _dpo(tmp_path / "nomodel", train_env, tmp_path / "missing")
    assert proc.returncode == 2 and "policy.path=" in proc.stderr and "no config.json" in proc.stderr
