"""rlvr.distributed without a launcher: the pure metric reduction, shares, refusals, and the collectives
on two real gloo processes (spawned here, a few seconds). The torchrun runs of `rlvr-train` are in
test_distributed_runs.py."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from rlvr.config import ConfigError, TrainConfig
from rlvr.config_checks import batch_arithmetic, validate
from rlvr.distributed import (QUIET_HYDRA_OVERRIDES, all_gather_objects, combine_metrics, concat_results,
                              decided_by_main, is_collective_failure, map_in_shares, padded_share, reduce_metrics,
                              share)
from rlvr.rewards import RewardResult, reward_metrics


# ---- the metric rules -----------------------------------------------------------------
def test_combine_metrics_follows_each_rule():
    rows = [{"step": 3, "groups_trained": 2, "verdict/v/correct": 3.0, "completion_len/mean": 4.0,
             "completion_len/max": 7.0, "kl": 0.1, "rollout/logprob_diff_mean": 0.2, "rollout/is_ratio_min": 0.9,
             "time/step": 1.0, "memory/gpu_peak_gib": 3.0, "lr": 1e-3, "note": "a"},
            {"step": 3, "groups_trained": 2, "verdict/v/correct": 1.0, "completion_len/mean": 6.0,
             "completion_len/max": 5.0, "kl": 0.4, "rollout/is_ratio_min": 0.8, "time/step": 2.5,
             "memory/gpu_peak_gib": 5.5, "lr": 1e-3, "note": "b"}]
    weights = [{"completions": 8, "loss_tokens": 30, "completion_tokens": 32},
               {"completions": 8, "loss_tokens": 10, "completion_tokens": 48}]
    out = combine_metrics(rows, weights)
    assert out["step"] == 3 and isinstance(out["step"], int)
    assert out["groups_trained"] == 4 and isinstance(out["groups_trained"], int)  # counts are summed
    assert out["verdict/v/correct"] == 4.0
    assert out["completion_len/mean"] == 5.0 and out["completion_len/max"] == 7.0
    assert out["kl"] == pytest.approx((0.1 * 30 + 0.4 * 10) / 40)  # a mean over loss tokens
    assert out["rollout/logprob_diff_mean"] == 0.2  # only rank 0 had it
    assert out["rollout/is_ratio_min"] == 0.8 and out["time/step"] == 2.5 and out["lr"] == 1e-3
    assert out["memory/gpu_peak_gib"] == 5.5  # the fullest rank's
    assert out["note"] == "a"  # not a number: rank 0's


def test_reward_metrics_on_the_gathered_results_equal_one_process():
    """Concatenating per-rank RewardResults gives the global batch's metrics (std and counts included)."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    reasons = ["correct" if r else "wrong_answer" for r in rewards.tolist()]

    def result(lo, hi):
        return RewardResult(rewards[lo:hi], {"verifier": rewards[lo:hi]}, {"verifier": reasons[lo:hi]},
                            rewards[lo:hi].bool(), "verifier")
    joined = concat_results([result(0, 4), result(4, 8)])
    assert reward_metrics(joined) == reward_metrics(result(0, 8))


def test_shares_are_contiguous_and_equal():
    assert [list(share(8, r, 2)) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert list(share(6, 0, 1)) == list(range(6))
    with pytest.raises(ValueError, match="equal shares"):
        share(7, 0, 2)


def test_padded_shares_have_equal_lengths_and_count_their_real_items():
    """What rlvr-rm and rlvr-dpo split a batch or a pair set by: every rank the same number of items."""
    assert [padded_share(list("abcdefg"), r, 2) for r in range(2)] == [(list("abcd"), 4), (list("efgg"), 3)]
    assert [padded_share([5], r, 3) for r in range(3)] == [([5], 1), ([5], 0), ([5], 0)]
    assert padded_share(list("abcd"), 1, 2) == (list("cd"), 2) and padded_share([], 0, 2) == ([], 0)
    assert padded_share(list("abc"), 0, 1) == (list("abc"), 3)


def test_one_process_helpers_are_the_identity():
    metrics = {"loss": 0.5, "time/step": 1.0}
    assert reduce_metrics(metrics, {"completions": 4.0}) == (metrics, {"completions": 4.0})
    assert all_gather_objects("x") == ["x"]
    calls = []
    doubled, = map_in_shares(lambda xs: (calls.append(list(xs)) or torch.tensor(xs) * 2,), [1, 2, 3])
    assert doubled.tolist() == [2, 4, 6] and calls == [[1, 2, 3]]
    from rlvr.checkpoint import ResumeError

    with pytest.raises(ResumeError, match="nope"):
        decided_by_main(lambda: (_ for _ in ()).throw(ResumeError("nope")), (ResumeError,))


def test_collective_failures_are_recognised():
    assert is_collective_failure(RuntimeError("[../gloo/transport/tcp/pair.cc:537] Read error: Connection reset "
                                              "by peer"))
    assert is_collective_failure(RuntimeError("Timed out waiting 20000ms for send operation to complete"))
    assert not is_collective_failure(RuntimeError("shape mismatch"))


# ---- configuration across ranks ---------------------------------------------------------
def _cfg(**trainer) -> TrainConfig:
    cfg = TrainConfig()
    cfg.trainer.backend, cfg.trainer.prompts_per_step, cfg.trainer.micro_batch_size = "deepspeed", 8, 8
    for key, value in trainer.items():
        setattr(cfg.trainer, key, value)
    return cfg


@pytest.mark.parametrize("change, message", [
    ({"prompts_per_step": 6}, "cannot be split into 4 equal per-rank shares; set trainer.prompts_per_step to a "
                              "multiple of 4"),
    ({"backend": "torch"}, "trainer.backend=torch runs one process, but this launch has 4 ranks"),
    ({"micro_batch_size": 32}, "per-rank mini-batch of 16 completions is not a multiple of "
                               "trainer.micro_batch_size=32"),
])
def test_world_size_refusals(change, message):
    validate(_cfg(), world_size=4)
    with pytest.raises(ConfigError, match=message):
        validate(_cfg(**change), world_size=4)


def test_drop_zero_variance_is_refused_with_several_ranks():
    cfg = _cfg()
    cfg.algorithm.drop_zero_variance = True
    validate(cfg, world_size=1)
    with pytest.raises(ConfigError, match="drop_zero_variance=false or launch one process"):
        validate(cfg, world_size=2)


def test_batch_arithmetic_says_the_per_rank_split():
    text = batch_arithmetic(_cfg(), world_size=2)
    assert "8 prompts x 8 completions = 64 completions per step" in text
    assert "over 2 ranks: 4 prompts = 32 completions per rank" in text and "per rank" in text.splitlines()[2]
    assert "ranks" not in batch_arithmetic(_cfg())


# ---- checkpoints ------------------------------------------------------------------------
class _Backend:
    rank, world_size, is_main = 0, 1, True

    def save_pretrained(self, directory, tokenizer):
        Path(directory).mkdir(parents=True, exist_ok=True)

    def save(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)


def test_checkpoint_records_its_layout_and_a_resume_at_another_world_size_is_refused(tmp_path):
    from rlvr.checkpoint import ResumeError, load_trainer_state, resolve_resume, save_checkpoint

    path = save_checkpoint(tmp_path, 2, _Backend(), None, {"data": {}}, keep=2)
    assert json.loads((path / "layout.json").read_text())["world_size"] == 1
    state = load_trainer_state(path, rank=0)
    assert len(state["rng_by_rank"]) == 1 and torch.equal(state["rng"]["torch"], state["rng_by_rank"][0]["torch"])
    assert resolve_resume("auto", tmp_path, 10, world_size=1) == path
    with pytest.raises(ResumeError, match="at step 2 and this run has 2 steps: nothing left to do. Raise "
                                          "trainer.max_steps or trainer.epochs to train further"):
        resolve_resume("auto", tmp_path, 2, 1, "trainer.max_steps or trainer.epochs")  # rlvr-dpo's length
    (path / "layout.json").write_text(json.dumps({"world_size": 2}))
    with pytest.raises(ResumeError, match="written by 2 rank\\(s\\) but this launch has 1.*--nproc-per-node 2.*"
                                          "model.path="):
        resolve_resume("auto", tmp_path, 10, world_size=1)


def test_run_dir_of_other_ranks_writes_nothing(tmp_path):
    from rlvr.config import LoggerConfig
    from rlvr.run_dir import RunDir

    run = RunDir(tmp_path / "run", LoggerConfig(), writer=False)
    run.log({"step": 1, "loss": 0.5})
    run.write_samples(1, [{"a": 1}])
    run.write_json("summary.json", {})
    run.truncate_metrics(0)
    run.plot_curve()
    assert not (tmp_path / "run").exists()


def test_a_single_process_stage_refuses_a_launch_of_several_ranks(tmp_path):
    """rlvr-sft (no torchrun support) on rank 0 of 2: one error line, exit 2, no run directory left."""
    import os
    import subprocess

    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "rlvr.sft.train", f"hydra.run.dir={tmp_path / 'run'}",
                           "model.sft.steps=1"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: rlvr-sft runs one process, but this launch has 2 ranks; run it without torchrun")
    assert not (tmp_path / "run").exists()


def test_ranks_above_zero_ask_hydra_for_no_directories(monkeypatch):
    import rlvr.rl.train as train

    seen = []
    monkeypatch.setattr(train, "train", lambda: seen.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["rlvr-train", "trainer.total_steps=2"])
    monkeypatch.setenv("RANK", "1")
    train.main()
    assert seen[-1][1:] == ["trainer.total_steps=2", *QUIET_HYDRA_OVERRIDES]
    monkeypatch.setattr(sys, "argv", ["rlvr-train"])
    monkeypatch.setenv("RANK", "0")
    train.main()
    assert seen[-1] == ["rlvr-train"]


# ---- the collectives on two gloo processes ------------------------------------------------
def _worker(rank: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from rlvr.checkpoint import ResumeError
    from rlvr.distributed import all_reduce_sum, all_true, barrier, broadcast_object, main_first

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    result: dict = {}
    result["path"] = broadcast_object(f"/runs/decided-by-{rank}")
    result["sum"] = all_reduce_sum(1.5 + rank)
    result["all_true"] = [all_true(True), all_true(rank == 0)]
    metrics, totals = reduce_metrics({"groups_trained": 2, "kl": 0.1 * (rank + 1), "time/step": 1.0 + rank},
                                     {"completions": 8, "loss_tokens": 10.0 * (rank + 1), "completion_tokens": 5})
    result["metrics"], result["totals"] = metrics, totals
    try:
        decided_by_main(lambda: (_ for _ in ()).throw(ResumeError("refused on rank 0")), (ResumeError,))
    except ResumeError as exc:
        result["error"] = str(exc)
    calls: list = []
    mapped, = map_in_shares(lambda xs: (calls.append(len(xs)) or torch.tensor(xs, dtype=torch.float64) * 10,),
                            list(range(5)))
    result["mapped"], result["calls"] = mapped.tolist(), calls
    order = []
    with main_first():
        order.append(rank)
        Path(out, f"built{rank}").write_text("")
        result["saw_rank0_first"] = rank == 0 or Path(out, "built0").exists()
    barrier()
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def test_collectives_on_two_gloo_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_worker, args=(f"file://{tmp_path / 'store'}", str(tmp_path)), nprocs=2, start_method="spawn")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r in results:
        assert r["path"] == "/runs/decided-by-0" and r["sum"] == 4.0 and r["all_true"] == [True, False]
        assert r["metrics"]["groups_trained"] == 4 and r["metrics"]["time/step"] == 2.0
        assert r["metrics"]["kl"] == pytest.approx((0.1 * 10 + 0.2 * 20) / 30)
        assert r["totals"] == {"completions": 16.0, "loss_tokens": 30.0, "completion_tokens": 10.0}
        assert r["error"] == "refused on rank 0" and r["saw_rank0_first"]
        assert r["mapped"] == [0.0, 10.0, 20.0, 30.0, 40.0] and r["calls"] == [3]  # shares of 3: (0 1 2) (3 4 4)
