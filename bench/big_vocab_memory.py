"""Peak RSS of a whole `rlvr-train` run with Qwen's 151,936-token vocabulary (generation, evaluation, update).

The model of `train_memory.py` (a Llama of tiny width, hidden 64 and 2 layers, with Qwen2.5's
vocabulary, random weights, EOS suppressed so every completion runs its full budget, and a
word-level tokenizer of that size, all built locally), trained by a plain ``python -m rlvr.train``
process: 16 prompts x 4 completions x 256 new tokens through the `hf` engine, one step with an
update, and the held-out evaluation before and after it (64 prompts: greedy pass@1 plus 4 samples
each for pass@4) and the final checkpoint. The reward is the shipped `length_budget` rule made soft
over 100,000 characters (every completion scores a little differently, so each group has spread and
the update runs). Everything else is the schema's defaults (decode batch 64, micro-batch 8, fp32).
Printed: peak memory of the whole process tree (summed RSS polled from /proc; `process_memory.py`),
the largest process's ``ru_maxrss``, and the load.

``--breakdown`` runs the same command in one process with a sampler of its RSS (every 10 ms) and
prints the peak inside each phase of the run (start-up, each evaluation, generation, the
learner's log-prob pass, the update, the checkpoint).

    python bench/big_vocab_memory.py [--quick] [--breakdown] [--baseline DIR] [overrides...]

``--baseline DIR`` runs the same command on another source tree (e.g. ``git archive`` of an earlier
commit unpacked into DIR) right after, for a before/after from one invocation.

``--quick``: 4 prompts x 4 completions x 32 tokens, 8 held-out prompts (a smoke run, not the figure).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import load, run_measured  # noqa: E402
from train_memory import MODEL_DIR, VOCAB, build_model  # noqa: E402

GIB_TARGET = 3.0


def overrides(quick: bool) -> list[str]:
    prompts, new_tokens, eval_size = (4, 32, 8) if quick else (16, 256, 64)
    return ["model=local", f"model.path={MODEL_DIR}", "algorithm.group_size=4", f"trainer.prompts_per_step={prompts}",
            f"rollout.max_new_tokens={new_tokens}", "trainer.total_steps=1", f"data.eval_size={eval_size}",
            "trainer.sample_every=0", "reward.workers=1", "rollout.temperature=1.0",
            "reward.sources=[{name: length, kind: rule, check: length_budget, options: {max_chars: 0, "
            "falloff_chars: 100000}}]"]


class PhaseSampler:
    """VmRSS sampled every ``interval`` s in a thread; the peak is kept per phase (the innermost one named)."""

    def __init__(self, interval: float = 0.01):
        self.stack, self.peaks, self.interval = ["start-up"], {}, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    @staticmethod
    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def sample(self) -> None:
        phase = self.stack[-1]
        self.peaks[phase] = max(self.peaks.get(phase, 0.0), self.rss_mib())

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        sampler = self

        def wrapped(*args, **kwargs):
            sampler.sample()
            sampler.stack.append(label)
            try:
                return original(*args, **kwargs)
            finally:
                sampler.sample()
                sampler.stack.pop()

        setattr(owner, name, wrapped)


def breakdown(args: list[str]) -> None:
    """The run in this process, phase by phase (see the module docstring)."""
    from rlvr.learner.update import Learner
    from rlvr.rl import loop, train

    sampler = PhaseSampler()
    sampler.wrap(loop.Loop, "evaluate", "evaluation")
    sampler.wrap(loop.Loop, "generate", "generation (training step)")
    sampler.wrap(Learner, "logprobs", "learner log-prob pass (no grad)")
    sampler.wrap(Learner, "update", "update (forward + backward + AdamW)")
    sampler.wrap(loop.Loop, "checkpoint", "checkpoint")
    sampler.thread.start()
    sys.argv = ["rlvr-train", *args]
    try:
        train.main()
    finally:
        sampler.stop.set()
        sampler.thread.join()
        print("RESULT " + json.dumps(sampler.peaks), flush=True)


def whole_run(tree: Path, args: list[str], root: Path, name: str) -> dict:
    """One ``python -m rlvr.train`` of the source tree ``tree``, measured (`process_memory.run_measured`)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "RLVR_CACHE": str(root / f"cache-{name}")}
    at_start, log = load(), root / f"{name}.log"
    with open(log, "w") as out:
        r = run_measured([sys.executable, "-m", "rlvr.train", f"hydra.run.dir={root / name}", *args], env=env,
                         cwd=tree, stdout=out, stderr=out)
    if r["returncode"]:
        sys.exit(f"rlvr-train failed (exit {r['returncode']}); log {log}:\n" + log.read_text()[-3000:])
    rows = [json.loads(x) for x in (root / name / "metrics.jsonl").read_text().splitlines()]
    return {**r, "step": next(x for x in rows if "time/step" in x), "load_start": at_start, "load_end": load()}


def report(label: str, r: dict) -> None:
    s = r["step"]
    print(f"{label}: peak RSS {r['peak_mib'] / 1024:.2f} GiB (whole tree polled {r['tree_peak_mib'] / 1024:.2f}, "
          f"largest process {r['largest_mib'] / 1024:.2f}) | wall {r['wall_s']:.0f} s, step {s['time/step']:.1f} s "
          f"(generate {s['time/generate']:.1f}, update {s['time/update']:.1f}), groups trained {s['groups_trained']}, mean "
          f"completion {s['completion_len/mean']:.0f} tokens | {r['load_start']} at start, {r['load_end']} at end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 4 prompts x 4 x 32 tokens")
    ap.add_argument("--breakdown", action="store_true", help="also the peak RSS of each phase (a second run)")
    ap.add_argument("--baseline", type=Path, help="another rlvr source tree (an earlier commit) run the same way after")
    ap.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    a, extra = ap.parse_known_args()
    if a.in_process:
        breakdown(extra)
        return
    if not (MODEL_DIR / "config.json").exists():
        build_model(MODEL_DIR)
    root = Path(tempfile.mkdtemp(prefix="rlvr-big-vocab-"))
    args = overrides(a.quick) + extra
    r = whole_run(REPO, args, root, "run")
    b = whole_run(a.baseline.resolve(), args, root, "baseline") if a.baseline else None
    print(f"model: Llama hidden 64, 2 layers, vocabulary {VOCAB:,} | {' '.join(args[2:])}")
    report("this tree", r)
    if b is not None:
        report(f"baseline {a.baseline}", b)
    print(f"target under {GIB_TARGET:g} GiB: {'met' if r['peak_mib'] / 1024 < GIB_TARGET else 'MISSED'}")
    if a.breakdown:
        env = {**os.environ, "PYTHONPATH": str(REPO), "RLVR_CACHE": str(root / "cache-breakdown")}
        log = root / "breakdown.log"
        with open(log, "w") as out:
            m = run_measured([sys.executable, __file__, "--in-process", f"hydra.run.dir={root / 'breakdown'}", *args],
                             env=env, cwd=REPO, stdout=out, stderr=out)
        line = [x for x in log.read_text().splitlines() if x.startswith("RESULT ")]
        if m["returncode"] or not line:
            sys.exit(f"breakdown run failed; log {log}:\n" + log.read_text()[-3000:])
        print(f"breakdown of this tree's run (one process, RSS sampled every 10 ms; largest process "
              f"{m['largest_mib'] / 1024:.2f} GiB):")
        for phase, peak in json.loads(line[-1][7:]).items():
            print(f"  {phase:<38} peak {peak:6.0f} MiB")
    print(f"run directories and logs: {root}")


if __name__ == "__main__":
    main()
