"""`rlvr-train algorithm=ppo` end to end in subprocesses: its metrics, the critic's warm-up, SIGKILL + resume
(critic, its optimizer and the KL controller included), and the bad input it refuses with one line."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest


from .conftest import REPO, assert_resume_reproduces, train_command

# one critic warm-up step, an adaptive KL controller that must move beta, the KL in the reward
PPO = ("trainer.threads=1", "algorithm=ppo", "trainer.total_steps=6", "model.sft.steps=300",
       "algorithm.critic.warmup_steps=1", "algorithm.critic.lr=1e-3", "algorithm.kl_target=0.01",
       "algorithm.kl_horizon=100", "algorithm.beta=0.1")


def _run(cmd, env, timeout=600):
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


CRITICS = {"separate": "algorithm.critic.shared=false", "shared": "algorithm.critic.shared=true"}


@pytest.fixture(scope="module", params=sorted(CRITICS))
def ppo_run(request, tmp_path_factory, train_env):
    """(run directory, stdout, overrides) of a 6-step PPO run with each kind of critic."""
    overrides = (*PPO, CRITICS[request.param])
    run_dir = tmp_path_factory.mktemp("runs") / f"ppo_{request.param}"
    proc = _run(train_command(run_dir, *overrides), train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, proc.stdout, overrides


def test_ppo_logs_its_metrics_and_keeps_the_policy_still_during_the_critic_warm_up(ppo_run):
    run_dir, out, overrides = ppo_run
    shared = CRITICS["shared"] in overrides
    assert ("a value head on the policy's trunk, from a fresh value head" if shared else
            "a separate value model, from the policy start weights") in out
    assert "reference model: loaded" in out
    steps = [r for r in _metrics(run_dir) if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for key in ("ppo/value_loss", "ppo/explained_variance", "ppo/value_clip_frac", "ppo/kl", "ppo/kl_target",
                "ppo/kl_coef", "ppo/critic_grad_norm", "ppo/policy_frozen", "ppo/advantage_std"):
        assert all(key in r for r in steps), key
    first, rest = steps[0], steps[1:]
    assert first["ppo/policy_frozen"] == 1.0 and first["groups_trained"] == 0 and "grad_norm" not in first
    assert all(r["ppo/policy_frozen"] == 0.0 and "grad_norm" in r for r in rest)
    # the controller moves beta each step (KL above or below its target); the step logs what it used
    coefs = [r["ppo/kl_coef"] for r in steps]
    assert coefs[0] == pytest.approx(0.1) and len(set(coefs)) == len(coefs)
    assert all(math.isclose(r["beta"], nxt["ppo/kl_coef"]) for r, nxt in zip(steps, steps[1:]))
    ckpt = sorted((run_dir / "checkpoints").glob("step_*"))[-1]
    import torch

    saved = torch.load(ckpt / "critic" / "weights.pt", weights_only=True)
    assert list(saved) == ["weight"] if shared else "score.weight" in saved  # the head alone, or the whole model
    assert (ckpt / "critic" / "backend").is_dir()  # its optimizer's state


def test_ppo_with_the_kl_as_a_loss_term_and_groups_of_one(tmp_path, train_env):
    """kl_penalty=loss: the policy loss carries beta x k3 KL (the loop's `kl`), the rewards none; G = 1 is allowed."""
    run_dir = tmp_path / "loss"
    proc = _run(train_command(run_dir, "trainer.threads=1", "algorithm=ppo", "algorithm.kl_penalty=loss",
                              "algorithm.group_size=1", "trainer.prompts_per_step=8", "trainer.micro_batch_size=4",
                              "trainer.save_every=0"), train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "KL loss term" in proc.stdout
    steps = [r for r in _metrics(run_dir) if "reward/mean" in r]
    assert len(steps) == 4 and any(r["kl"] > 0 for r in steps[1:])  # the loss term's k3 KL, measured
    assert all(r["ppo/kl_coef"] > 0 and "ppo/value_loss" in r for r in steps)


def test_ppo_sigkill_and_resume_reproduce_the_uninterrupted_run(ppo_run, tmp_path, train_env):
    """Like GRPO's (test_train.py): killed right after step 2's checkpoint, resumed, every metric equal."""
    reference_dir, _, overrides = ppo_run
    assert_resume_reproduces(reference_dir, tmp_path / "killed", tuple(overrides), train_env)


def _one_error_line(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), proc.stderr[-2000:]
    return lines[0]


def test_a_critic_starts_from_a_reward_models_weights_and_keeps_its_head(tmp_path, train_env, tiny_model_dir):
    """critic.path = a reward model (a sequence-classification directory, as rlvr-rm writes): its trained head is
    kept, not re-initialized. Its head here is all zeros, so the first step's values are exactly 0 (a fresh head
    would not give 0). The reward model is narrower than the policy (width 32 vs the default 64): allowed."""
    import torch
    from transformers import AutoModelForSequenceClassification

    rm_dir = tmp_path / "rm"
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    with torch.no_grad():
        rm.score.weight.zero_()
    rm.save_pretrained(rm_dir)
    run_dir = tmp_path / "from_rm"
    proc = _run(train_command(run_dir, "trainer.threads=1", "algorithm=ppo", f"algorithm.critic.path={rm_dir}",
                              "trainer.total_steps=2", "trainer.save_every=0", "model.hidden_size=64"), train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"ppo: critic a separate value model, from {rm_dir}" in proc.stdout
    first = next(r for r in _metrics(run_dir) if "ppo/value_mean" in r)
    assert first["ppo/value_mean"] == 0.0 and first["ppo/value_loss"] > 0


def test_a_value_model_with_another_vocabulary_is_one_line(tmp_path, train_env):
    """The critic reads the policy's token ids: a value model of another shape (vocabulary) is refused."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlvr.models.tiny import build_tiny_llama

    other = build_tiny_llama(tmp_path / "other", hidden_size=48, num_layers=1, num_heads=2, intermediate_size=64)
    model = AutoModelForCausalLM.from_pretrained(other)
    with torch.random.fork_rng():
        model.resize_token_embeddings(model.config.vocab_size + 7)
    model.save_pretrained(other)
    proc = _run(train_command(tmp_path / "x", "trainer.threads=1", "algorithm=ppo",
                              f"algorithm.critic.path={other}"), train_env)
    _one_error_line(proc, "algorithm.critic.path", "vocabulary", "algorithm.critic.path=null")


def test_a_value_head_from_a_reward_model_of_another_width_is_one_line(tmp_path, train_env, tiny_model_dir):
    """critic.shared=true puts the reward model's head on the policy's trunk: it must read the policy's width."""
    from transformers import AutoModelForSequenceClassification

    rm_dir = tmp_path / "rm"  # width 32 (the fixture); the policy below is 64 wide
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).save_pretrained(rm_dir)
    proc = _run(train_command(tmp_path / "x", "trainer.threads=1", "algorithm=ppo", "algorithm.critic.shared=true",
                              f"algorithm.critic.path={rm_dir}", "model.hidden_size=64"), train_env)
    line = _one_error_line(proc, "algorithm.critic.path", "hidden size is 32", "policy's is 64",
                           "algorithm.critic.shared=false")
    assert "Traceback" not in proc.stderr, line


@pytest.mark.parametrize("overrides,needles", [
    (("algorithm.beta=0",), ("algorithm.kl_target", "algorithm.beta=0.05")),
    (("algorithm.lam=1.5",), ("algorithm.lam=1.5", "[0, 1]")),
    (("algorithm.kl_penalty=both",), ("algorithm.kl_penalty", "reward, loss")),
    (("algorithm.critic.path=/nowhere/critic",), ("algorithm.critic.path=/nowhere/critic", "no such directory")),
    (("algorithm.critic.warmup_steps=4",), ("warmup_steps=4", "never move")),
    (("algorithm.group_size=1", "algorithm.drop_zero_variance=true"), ("would drop every group",
                                                                        "drop_zero_variance=false")),
])
def test_bad_ppo_settings_are_one_line_before_anything_is_built(tmp_path, train_env, overrides, needles):
    proc = _run(train_command(tmp_path / "x", "algorithm=ppo", *overrides), train_env)
    _one_error_line(proc, *needles)
    assert "[sft]" not in proc.stdout and "model:" not in proc.stdout


def test_resuming_a_grpo_checkpoint_as_ppo_is_one_line(ppo_run, tmp_path, train_env):
    """A checkpoint without critic/ (a GRPO run's) cannot resume PPO: one error line, no traceback."""
    grpo_dir = tmp_path / "grpo"
    done = _run(train_command(grpo_dir, "trainer.threads=1", "trainer.total_steps=2", "trainer.save_every=2"),
                train_env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _, _, overrides = ppo_run
    proc = _run(train_command(grpo_dir, *overrides, f"resume={grpo_dir / 'checkpoints' / 'step_000002'}"), train_env)
    _one_error_line(proc, "no critic/", "resume=never")
