"""The training loop: sample groups -> verify -> advantages -> update -> log / eval / checkpoint.

Every step is seeded from (trainer.seed, step), and evaluation runs on a forked random
stream, so a run resumed from a checkpoint reproduces the uninterrupted run's metrics.

**Excluded rows** (a reward source of non-zero weight failed on them: a judge's timeout or
parse error, `rlvr.rewards.scorer`) never enter the reward the policy sees: they are left
out of their group's mean and standard deviation, their advantage is 0, their tokens are
masked out of the loss (KL term included), and a group with fewer than two scored rows is
a zero-variance group (refilled under ``drop_zero_variance``). ``reward/excluded_frac``
counts them.

**Across ranks** (torchrun, `rlvr.distributed`): the prompt stream is global and identical on
every rank; each rank samples, scores and trains on its contiguous share of the step's
prompts (whole groups, seeded by the *global* prompt index, so a 1-rank and a 2-rank run
see the same rollouts). Reward metrics are computed on the gathered global results, the
rest are reduced over ranks; rank 0 alone writes the run directory and prints. Evaluation
runs once, on rank 0, while the others wait in a barrier, except where every forward is
a collective (ZeRO-3 with the transformers engine): there every rank runs the same
evaluation in lockstep. Checkpoints are collective (`rlvr.checkpoint`).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.algo import get_advantage, get_correction, mismatch_stats, zero_variance_groups
from rlvr.checkpoint import (BACKEND_DIR, ResumeError, load_trainer_state, resolve_resume, save_checkpoint,
                             set_rng_state)
from rlvr.config import TrainConfig, TruthConfig
from rlvr.data import Prompt, PromptStream
from rlvr.data.chat import encode_prompt
from rlvr.distributed import (all_gather_objects, barrier, broadcast_object, collective_forward, concat_results,
                              reduce_metrics, share)
from rlvr.eval.heldout import run_evaluation
from rlvr.eval.rubric import rubric_record, write_rubric
from rlvr.eval.summaries import task_summary
from rlvr.eval.watch_hook import RunWatch
from rlvr.rewards import RewardResult, reward_metrics
from rlvr.rl.interrupt import CtrlC
from rlvr.rl.parts import Parts
from rlvr.rollout.base import RolloutBatch, SamplingParams, StaleWeightsError, concat_rollouts
from rlvr.rollout.multiturn import generate_for, tool_metrics
from rlvr.run_dir import RunDir
from rlvr.stage import resolve_device

__all__ = ["Loop", "resolve_resume", "ResumeError", "DETERMINISTIC_SKIP", "prompt_seed"]

# Metrics that measure the machine, not the run (excluded when comparing runs).
DETERMINISTIC_SKIP = ("time/", "tokens_per_s", "wall_s", "memory/", "tools/exec_seconds", "eval/tools/exec_seconds")


@dataclass
class Sampled:
    prompts: list[Prompt]  # one per completion
    rollouts: RolloutBatch
    rewards: torch.Tensor
    passed: torch.Tensor  # [N] bool, aligned with rollouts
    reasons: list[str]  # [N] verdict reasons of the pass-deciding source, aligned with rollouts
    first: RewardResult  # the first round, all groups (what the policy does now)
    zero_variance_frac: float
    refill_rounds: int
    times: dict[str, float] = field(default_factory=dict)
    first_prompts: Optional[list[Prompt]] = None  # this rank's first sampling round, as sampled (the watch's view)
    first_rollouts: Optional[RolloutBatch] = None
    first_result: Optional[RewardResult] = None
    valid: Optional[torch.Tensor] = None  # [N] bool, aligned with rollouts: False on excluded rows (None = all scored)


def prompt_seed(*parts: int) -> int:
    """A 63-bit sampling seed for one prompt from (run seed, step, round, index): independent of batch splits."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Loop:
    def __init__(self, cfg: TrainConfig, parts: Parts, run_dir: RunDir):
        self.cfg, self.p, self.run_dir = cfg, parts, run_dir
        self.stream = PromptStream(parts.train_set, cfg.trainer.seed)
        self.eval_prompts = [parts.eval_set[i] for i in range(len(parts.eval_set))]
        self.eval_encoded = [self.encode(p) for p in self.eval_prompts]
        self.start_step = 0
        self.rank, self.world = getattr(parts.backend, "rank", 0), getattr(parts.backend, "world_size", 1)
        self.is_main = self.rank == 0  # writes the run directory and prints
        # every forward is a collective (ZeRO-3 and an engine on the policy module): all ranks evaluate together
        self.eval_lockstep = (self.world > 1 and bool(getattr(parts.engine, "shares_policy", False))
                              and collective_forward(parts.model))
        self.synced_version: Optional[int] = None  # weight version last pushed into the engine
        self.diff_history: list[float] = []  # rollout/logprob_diff_mean per step (the mismatch watch)
        # the reward-hacking watch, bad cases, held-out records and the report (rank 0 writes)
        self.watch = RunWatch(cfg, parts.scorer, run_dir, is_main=self.is_main)
        if self.is_main:
            write_rubric(run_dir.path, cfg)  # RUN_DIR/rubric.json: the rubric and its version, when one is used
        self.stop_requested = False  # the watch asked to end the run after the current step
        device = resolve_device(cfg.model.device)  # the policy's; on a GPU each step reports its peak memory
        self.gpu = device if device.type == "cuda" else None

    def sync_weights(self, version: int) -> None:
        """Push the learner's weights into the engine once per version (before generating)."""
        if self.synced_version != version:
            self.p.engine.update_weights(self.p.backend, version=version)
            self.synced_version = version

    def generate(self, encoded: list[list[int]], params: SamplingParams, seeds: list[int], version: int,
                 prompts: list[Prompt]) -> RolloutBatch:
        """Wake the engine, sync, sample, put it back to sleep; refuse rollouts from other weights."""
        self.p.engine.wake()
        self.sync_weights(version)
        try:
            batch = generate_for(self.p.engine, encoded, params, seeds, prompts)
        finally:
            self.p.engine.sleep()
        if batch.weight_version != version:
            raise StaleWeightsError(f"the engine sampled with weight version {batch.weight_version} but the learner "
                                    f"is at version {version}: the weight sync failed")
        return batch

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.p.tokenizer, prompt, self.cfg.data.max_prompt_tokens)

    def restore(self, checkpoint: Path) -> None:
        state = load_trainer_state(checkpoint, self.rank)  # this rank's RNG state
        self.p.backend.load(Path(checkpoint) / BACKEND_DIR)
        self.stream.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.start_step = int(state["step"])
        self.cfg.algorithm.beta = float(state.get("beta", self.cfg.algorithm.beta))  # raised by the watch, or PPO's
        if self.p.ppo is not None:  # the critic and its optimizer (PPO's KL controller state is beta itself)
            self.p.ppo.load(checkpoint)
        total = self.cfg.trainer.total_steps
        if self.start_step >= total:  # resolve_resume already refused this; never run zero steps silently
            raise ResumeError(f"checkpoint {checkpoint} is at step {self.start_step} >= trainer.total_steps={total}")
        self.run_dir.truncate_metrics(self.start_step)
        self.watch.on_resume(self.start_step)
        self.say(f"resumed from {checkpoint}: step {self.start_step}, {total - self.start_step} steps to go")

    def say(self, line: str) -> None:
        """Print on rank 0 only (every rank computes the same reduced figures)."""
        if self.is_main:
            print(line, flush=True)

    # ---- one step -------------------------------------------------------------------
    def sample(self, step: int) -> Sampled:
        """This rank's rollout batch; with drop_zero_variance (one rank), zero-variance groups are replaced
        (capped rounds). ``first`` and ``zero_variance_frac`` are global (gathered over ranks)."""
        a, r = self.cfg.algorithm, self.cfg.rollout
        params = SamplingParams(n=a.group_size, temperature=r.temperature, top_p=r.top_p,
                                max_new_tokens=r.max_new_tokens)
        need, rounds, first, zero_frac = self.cfg.trainer.prompts_per_step, 0, None, 0.0
        kept: list[tuple[list[Prompt], RolloutBatch, torch.Tensor, torch.Tensor, list[str], torch.Tensor]] = []
        times = {"time/generate": 0.0, "time/reward": 0.0}
        while True:
            taken = self.stream.take(need)  # global: every rank advances the stream by the global count
            mine = share(len(taken), self.rank, self.world)
            prompts = [taken[i] for i in mine]
            seeds = [prompt_seed(self.cfg.trainer.seed, step, rounds, i) for i in mine]  # the global prompt index
            t0 = time.perf_counter()
            rollouts = self.generate([self.encode(q) for q in prompts], params, seeds, version=step - 1,
                                     prompts=prompts)
            t1 = time.perf_counter()
            repeated = [q for q in prompts for _ in range(a.group_size)]
            result = self.p.scorer.score(repeated, rollouts.texts)
            times["time/generate"] += t1 - t0
            times["time/reward"] += time.perf_counter() - t1
            flat = zero_variance_groups(result.rewards, a.group_size, valid=result.valid())
            if first is None:  # every rank's groups: the same metrics and skip decision on every rank
                first = self.gathered(result)
                first_round = (repeated, rollouts, result)
                zero_frac = zero_variance_groups(first.rewards, a.group_size, valid=first.valid()).float().mean().item()
            keep = ~flat if a.drop_zero_variance else torch.ones_like(flat)
            index = torch.nonzero(keep.repeat_interleave(a.group_size)).flatten()
            reasons = result.gate_reasons()
            passed = result.passed if result.passed is not None else torch.zeros(len(rollouts), dtype=torch.bool)
            kept.append(([repeated[i] for i in index.tolist()], rollouts.select(index), result.rewards[index],
                         passed[index], [reasons[i] for i in index.tolist()], result.valid()[index]))
            need -= int(keep.sum())
            if need == 0 or not a.drop_zero_variance or rounds >= a.max_refill_rounds:
                break
            rounds += 1
        batch = concat_rollouts([k[1] for k in kept if len(k[1])] or [kept[0][1]], self.p.engine.pad_id)
        rewards, passed = torch.cat([k[2] for k in kept]), torch.cat([k[3] for k in kept])
        return Sampled([q for k in kept for q in k[0]], batch, rewards, passed, [x for k in kept for x in k[4]],
                       first, zero_frac, rounds, times, *first_round, valid=torch.cat([k[5] for k in kept]))

    def gathered(self, result: RewardResult) -> RewardResult:
        """Every rank's reward result joined in rank order (the global batch's); this one on one rank."""
        return result if self.world == 1 else concat_results(all_gather_objects(result))

    def reference_logprobs(self, batch: RolloutBatch) -> Optional[torch.Tensor]:
        if self.p.reference is None:
            return None
        return self.p.learner.logprobs(batch, forward=self.p.reference)

    def train_step(self, step: int) -> dict[str, Any]:
        torch.manual_seed(self.cfg.trainer.seed * 1_000_003 + step)
        if self.gpu is not None:
            torch.cuda.reset_peak_memory_stats(self.gpu)
        start = time.perf_counter()
        s = self.sample(step)
        a = self.cfg.algorithm
        metrics: dict[str, Any] = {"step": step, **reward_metrics(s.first), "zero_variance_frac": s.zero_variance_frac,
                                   "refill_rounds": s.refill_rounds}
        # this rank's rows; reduced over ranks below (`rlvr.distributed.combine_metrics`)
        local: dict[str, Any] = {"groups_trained": len(s.rollouts) // a.group_size}
        lengths = s.rollouts.lengths
        local.update({"completion_len/mean": lengths.mean().item() if len(lengths) else 0.0,
                      "completion_len/max": lengths.max().item() if len(lengths) else 0.0,
                      "truncated_frac": s.rollouts.truncated.float().mean().item() if len(s.rollouts) else 0.0})
        metrics.update(tool_metrics(s.rollouts, s.rewards))  # multi-turn rollouts: tools/*
        t0 = time.perf_counter()
        # every advantage is 0 and there is no KL term: the forward/backward passes would change nothing
        # (every row excluded: no token is left in the loss either; with a critic, PPO, flat groups still carry
        # signal: values differ from rewards)
        nothing_to_learn = a.skip_flat_steps and s.zero_variance_frac == 1.0 and self.p.ppo is None and (
            a.beta == 0 or not bool(s.first.valid().any()))
        if nothing_to_learn:
            local["groups_trained"] = 0
        loss_tokens, ref = 0.0, None
        if len(s.rollouts):
            loss_mask = s.rollouts.completion_mask.clone()
            if a.mask_truncated:
                loss_mask[s.rollouts.truncated] = 0.0
            loss_mask[~s.valid] = 0.0  # excluded rows: a reward source failed on them, nothing to learn from
            old, weights, loss_mask = self.correct(s.rollouts, loss_mask, local)  # every step: the sync watch
            loss_tokens = float(loss_mask.sum())
        if len(s.rollouts) and not nothing_to_learn:
            advantages, ref, beta = self.advantages(step, s, old, local)
            if advantages is not None:
                local.update(self.p.learner.update(s.rollouts, advantages, loss_mask, ref, seed=step,
                                                   old_logprobs=old, token_weights=weights, beta=beta))
        local.update(s.times)
        local["time/update"] = time.perf_counter() - t0
        local["time/step"] = time.perf_counter() - start
        if self.gpu is not None:  # this step's peak, generation and update included (the largest rank's)
            local["memory/gpu_peak_gib"] = torch.cuda.max_memory_allocated(self.gpu) / 2**30
        weights_of_rank = {"completions": float(len(s.rollouts)), "loss_tokens": loss_tokens,
                           "completion_tokens": float(s.rollouts.completion_mask.sum())}
        reduced, totals = reduce_metrics(local, weights_of_rank)
        metrics.update(reduced)
        metrics["tokens_per_s"] = totals["completion_tokens"] / max(metrics["time/step"], 1e-9)
        self.watch_mismatch(step, metrics)
        if self.is_main and self.cfg.trainer.sample_every and step % self.cfg.trainer.sample_every == 0:
            self.run_dir.write_samples(step, self.sample_rows(s))  # rank 0's share
        self.act_on_watch(step, self.watch.on_step(step, s, metrics, ref), metrics)
        return metrics

    def advantages(self, step: int, s: Sampled, old: Optional[torch.Tensor], metrics: dict[str, Any]
                   ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[float]]:
        """(advantages, reference log-probs, the loss's KL coefficient): group-relative, or PPO's GAE with its
        critic (`rlvr.rl.ppo`), whose advantages are None while the critic warms up (the policy stays put)."""
        a = self.cfg.algorithm
        valid = None if s.valid is None or bool(s.valid.all()) else s.valid  # the plain formulas when every row was scored
        if self.p.ppo is None:
            advantages = get_advantage(a.advantage)(s.rewards, a.group_size, a.scale, valid=valid)
            return advantages, self.reference_logprobs(s.rollouts), None
        ref = self.reference_logprobs(s.rollouts)
        # GAE runs over each completion's real tokens (a prefix; none for an excluded row, which then adds nothing
        # to the value loss either); the loss mask (corrections, truncation) applies to the policy loss only
        mask = s.rollouts.completion_mask
        if valid is not None:
            mask = mask * valid.to(mask.dtype).unsqueeze(1)
        out = self.p.ppo.advantages(step, s.rollouts, s.rewards, mask,
                                    s.rollouts.logprobs if old is None else old, ref)
        metrics.update(out.metrics)
        if not out.move_policy:
            metrics["groups_trained"] = 0
        return (out.advantages if out.move_policy else None), ref, out.loss_beta

    def act_on_watch(self, step: int, actions: Any, metrics: dict[str, Any]) -> None:
        """The watch's requests, decided by rank 0 for every rank: stop after this step, or raise the KL leash."""
        stop, factor = broadcast_object((bool(actions.stop), float(actions.kl_factor or 1.0)))
        if factor != 1.0:
            a = self.cfg.algorithm  # the learner holds this same config: the next update uses the new beta
            self.say(f"watch: step {step}: algorithm.beta {a.beta:.4g} -> {a.beta * factor:.4g}")
            a.beta *= factor
        if stop and not self.stop_requested:
            self.say(f"watch: step {step}: stopping the run (watch.stop_on); final evaluation and checkpoint follow")
            self.stop_requested = True
        metrics["beta"] = self.cfg.algorithm.beta

    def correct(self, batch: RolloutBatch, loss_mask: torch.Tensor, metrics: dict[str, Any]):
        """(old log-probs, token weights, loss mask) of the off-policy correction.

        The learner recomputes the old policy's log-probs whenever a correction applies or the
        engine samples from its own copy of the weights; for an engine sharing the policy with
        no correction, the learner measures the mismatch on its first forward instead (free).
        """
        a, engine = self.cfg.algorithm, self.p.engine
        name = a.rollout_correction or getattr(engine, "default_rollout_correction", "token_truncate")
        if name == "none" and getattr(engine, "shares_policy", False):
            return None, None, loss_mask
        old = self.p.learner.logprobs(batch)
        fix = get_correction(name)(old, batch.logprobs, loss_mask, a.rollout_correction_cap)
        metrics.update(mismatch_stats(old, batch.logprobs, batch.completion_mask, fix.changed))
        return old, (None if name == "none" else fix.weights), fix.mask

    def watch_mismatch(self, step: int, metrics: dict[str, Any]) -> None:
        """Warn when the engine/learner gap jumps after a sync (a stale or partial weight push looks like this)."""
        diff = metrics.get("rollout/logprob_diff_mean")
        if diff is None:
            return
        history = self.diff_history[-10:]
        if self.is_main and len(history) >= 3 and diff > 1e-3 and diff > 10 * sorted(history)[len(history) // 2]:
            print(f"warning: step {step}: rollout/logprob_diff_mean jumped to {diff:.3g} (median of the last "
                  f"{len(history)} steps {sorted(history)[len(history) // 2]:.3g}): the engine is sampling from "
                  f"weights other than the learner's; check the weight sync", flush=True)
        self.diff_history.append(diff)

    def sample_rows(self, s: Sampled) -> list[dict[str, Any]]:
        """Failed rollouts first (the bad cases users mine), then passing ones."""
        want = self.cfg.trainer.samples_per_dump
        failed = [i for i in range(len(s.rollouts)) if not s.passed[i]]
        passing = [i for i in range(len(s.rollouts)) if s.passed[i]]
        chosen = failed[:max(want // 2, want - len(passing))]
        chosen = sorted(chosen + passing[:want - len(chosen)])
        tok = self.p.tokenizer
        return [{"uid": s.prompts[i].uid, "prompt": tok.decode(self.encode(s.prompts[i])),
                 "completion": s.rollouts.texts[i], "reference": s.prompts[i].reference,
                 **({"transcript": s.rollouts.transcripts[i], "tool_calls": s.rollouts.tool_records[i]}
                    if s.rollouts.transcripts is not None else {}),
                 "reward": float(s.rewards[i]) if s.valid is None or bool(s.valid[i]) else None,  # None: excluded
                 "passed": bool(s.passed[i]), "verdict": s.reasons[i],
                 "truncated": bool(s.rollouts.truncated[i])} for i in chosen]

    # ---- the run --------------------------------------------------------------------
    def evaluate(self, step: int) -> dict[str, Any]:
        """The held-out evaluation, once: on rank 0 (the others wait in a barrier), or on every rank in lockstep
        where each forward is a collective. Every rank syncs its engine first (under ZeRO-3 a collective)."""
        t0 = time.perf_counter()
        r, ev = self.cfg.rollout, self.cfg.trainer.eval
        self.p.engine.wake()
        self.sync_weights(step)
        out: dict[str, Any] = {}
        evaluation = None
        try:
            if self.is_main or self.eval_lockstep:
                evaluation = run_evaluation(self.p.engine, self.p.scorer, self.eval_prompts, self.eval_encoded, ev,
                                            r.top_p, r.max_new_tokens, seed=self.cfg.trainer.seed + 7)
                out = evaluation.metrics
        finally:
            self.p.engine.sleep()
        barrier()  # bounded by trainer.deepspeed.timeout_s: keep it above an evaluation's duration
        row = {"step": step, **out, "time/eval": time.perf_counter() - t0}
        if not self.is_main:
            return row
        self.run_dir.log(row)
        self.watch.on_eval(step, evaluation)  # per-prompt held-out records, its bad cases
        shown = [f"pass@1 {out['eval/pass@1']:.3f}"] if "eval/pass@1" in out else [
            f"reward {out['eval/reward/mean']:.3f}"]
        if "eval/pass@k" in out:
            shown.append(f"pass@{ev.k} {out['eval/pass@k']:.3f}")
        print(f"eval  step {step:>5} | " + " | ".join(shown), flush=True)
        return row

    def checkpoint(self, step: int) -> Path:
        state = {"data": self.stream.state_dict(), "beta": self.cfg.algorithm.beta}
        return save_checkpoint(self.run_dir.path, step, self.p.backend, self.p.tokenizer, state,
                               self.cfg.trainer.keep_checkpoints, extra=self.p.ppo.save if self.p.ppo else None)

    def run(self) -> dict[str, Any]:
        t, started = self.cfg.trainer, time.perf_counter()
        if self.start_step == 0:
            self.evaluate(0)
        last = self.start_step
        with CtrlC(self.say) as ctrl_c:
            for step in range(self.start_step + 1, t.total_steps + 1):
                metrics = self.train_step(step)
                if self.is_main:
                    self.run_dir.log(metrics)
                last = step
                if self.cfg.logger.console_every and step % self.cfg.logger.console_every == 0:
                    self.say(progress_line(metrics, t.total_steps))
                if ctrl_c.pressed(self.world):
                    self.interrupted(step)
                if self.stop_requested:
                    break
                self._between_steps(step)
        self.evaluate(last)
        self.checkpoint(last)  # after the final evaluation: a run killed during it resumes and redoes it
        return self.finish(time.perf_counter() - started, last)

    def interrupted(self, step: int) -> None:
        """Ctrl-C: the step in flight has finished; save it, say how to resume, exit 130."""
        path = self.checkpoint(step)
        self.say(f"interrupted after step {step}: checkpoint {path}; resume with run_name={self.run_dir.path.name} "
                 f"resume=auto (or resume={path})")
        raise SystemExit(130)

    def _between_steps(self, step: int) -> None:
        """The periodic evaluation and checkpoint after a step (the last step's come after the loop)."""
        t = self.cfg.trainer
        if t.eval.every and step % t.eval.every == 0 and step != t.total_steps:
            self.evaluate(step)
        if t.save_every and step % t.save_every == 0 and step != t.total_steps:
            self.checkpoint(step)

    def finish(self, wall: float, last_step: Optional[int] = None) -> dict[str, Any]:
        """summary.json: held-out pass@1/pass@k where a verifier decides, else the mean held-out reward (rank 0)."""
        if not self.is_main:
            return {}
        rows = self.run_dir.read_metrics()
        key = "eval/pass@1" if self.p.scorer.decides_pass else "eval/reward/mean"
        evals = [r for r in rows if key in r]
        curve = self.run_dir.plot_curve()
        first, last = evals[0], evals[-1]
        steps = self.cfg.trainer.total_steps if last_step is None else last_step
        summary: dict[str, Any] = {"steps": steps, "stopped_by_watch": self.stop_requested,
                                   "resumed_from_step": self.start_step,
                                   "reward_before": first.get("eval/reward/mean"),
                                   "reward_after": last.get("eval/reward/mean")}
        if self.p.scorer.decides_pass:
            summary.update({"accuracy_before": first[key], "accuracy_after": last[key],
                            "accuracy_gain": last[key] - first[key], "pass_at_k_before": first.get("eval/pass@k"),
                            "pass_at_k_after": last.get("eval/pass@k")})
        summary.update(truth_summary(rows, first, last, self.cfg.reward.truth,
                                     has_reference=self.p.reference is not None))
        summary.update(task_summary(self.run_dir.path, {p.verifier for p in self.eval_prompts}))  # a task's own keys
        if rubric_record(self.cfg) is not None:
            summary["rubric"] = rubric_record(self.cfg)  # name, content-hash version, dimensions
        summary.update({"wall_s_this_process": wall, "curve": str(curve), "run_dir": str(self.run_dir.path)})
        self.run_dir.write_json("summary.json", summary)
        name = "pass@1" if self.p.scorer.decides_pass else "reward"
        print(f"done: held-out {name} {first[key]:.3f} -> {last[key]:.3f} ({last[key] - first[key]:+.3f}) "
              f"in {wall:.0f}s; curve {curve}", flush=True)
        self.watch.on_end()  # report.html / report.png; summary.json gains `dimensions` and `alerts`
        return summary


def truth_summary(rows: list[dict[str, Any]], first: dict[str, Any], last: dict[str, Any], truth: TruthConfig,
                  has_reference: bool) -> dict[str, Any]:
    """``<truth.name>_before|after``: the held-out mean of the run's truth source (``reward.truth``: on the built-in
    preference task its true rule, ``true_preference_before|after``) and ``truth`` (which source, which name);
    and ``kl``: the mean per-token KL to the reference over the last tenth of the steps (when the run has one)."""
    out: dict[str, Any] = {}
    key = f"eval/reward/{truth.source}/mean"
    if truth.source is not None and key in first and key in last:
        out.update({f"{truth.name}_before": first[key], f"{truth.name}_after": last[key],
                    "truth": {"source": truth.source, "name": truth.name}})
    kls = [r["kl"] for r in rows if "kl" in r and "eval/reward/mean" not in r]
    if kls and has_reference:
        tail = kls[-max(1, len(kls) // 10):]
        out["kl"] = sum(tail) / len(tail)
    return out


def progress_line(m: dict[str, Any], total: int) -> str:
    passed = f" | pass {m['pass_rate']:.3f}" if "pass_rate" in m else ""
    return (f"step {m['step']:>5}/{total} | reward {m['reward/mean']:.3f}{passed} | "
            f"len {m['completion_len/mean']:.1f} | zero-var {m['zero_variance_frac']:.2f} | "
            f"groups {m['groups_trained']}{'' if m['groups_trained'] else ' (no update)'} | "
            f"kl {m.get('kl', 0.0):.4f} | gnorm {m.get('grad_norm', 0.0):.3f} | lr {m.get('lr', 0.0):.2e} | "
            f"gen {m['time/generate']:.2f}s rew {m['time/reward']:.2f}s upd {m['time/update']:.2f}s | "
            f"{m['tokens_per_s']:.0f} tok/s")
