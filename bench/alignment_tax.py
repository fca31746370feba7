"""The alignment tax on the built-in tasks, and how much the pretraining mix (PPO-ptx) recovers.

    python bench/alignment_tax.py [--out DIR] [--cache DIR] [--rm DIR] [--rm-from-scratch]
                                  [--coefs 1] [--grpo-steps 40] [--grpo-override KEY=VALUE ...] [--template T]

Stages, each its own process on one model cache (a fresh one under --out unless --cache):

  1. SFT       the tiny Llama given both skills: `rlvr-sft +experiment=tiny_pref_arith_sft` on a jsonl
               mixing the arithmetic task's training rows (verifier `math`, target `\\boxed{N}`, prompts
               phrased by --template) one to one with the preference task's training rows (verifier
               `preference_rule`, its mixed-quality chat answers): every row names its own verifier
  2. RM        `rlvr-rm +experiment=tiny_rm` with the SFT model as backbone (InstructGPT's recipe;
               --rm-from-scratch: the plain tiny Llama; --rm DIR: an existing reward-model directory)
  3. GRPO      `rlvr-train +experiment=tiny_rm_grpo` from the SFT model against the RM (KL leash 0.2,
               the task's true rule measured at weight 0): preference prompts only
  4. GRPO+ptx  the same run with `algorithm.ptx_coef=c data.ptx.source=arithmetic`, the mix's prompts
               phrased by the same template as the SFT rows, for each c of --coefs

Measured for every policy in this process, on held-out prompts that no stage trains on: greedy
arithmetic accuracy on 100 held-out problems (the `math` verifier; the 100 that every GRPO run's
own arithmetic stream excludes, since its data.eval_size is the preference task's 100), the
true-preference rate on the preference task's 100 held-out prompts (greedy answers meeting every
hidden dimension of its rule), the problems each policy answers differently from the SFT model
(right -> wrong, wrong -> right), and the sequence-level KL to the SFT model on 2 samples per
held-out preference prompt at temperature 1 (`rlvr.dpo.policy_eval.sampled_kl`). Wall time is each
stage's process, start-up included. Everything is written to OUT/alignment_tax.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = 100  # the preference task's held-out prompts, and as many held-out arithmetic problems
MAX_NEW_TOKENS = 48  # as tiny_rm_grpo's rollouts
DEFAULT_TEMPLATE = "What is {prompt}?"
TASKS = ("preference", "arithmetic")


class Stages:
    """Runs the bench's stages as processes into OUT, each reusable by a rerun on the same OUT."""

    def __init__(self, out: Path, env: dict[str, str]):
        self.out, self.env = out, env
        self.upstream_fresh = False  # SFT or RM ran in this invocation: every later stage must run again

    def run(self, name: str, module: str, overrides: list[str], upstream: bool = False) -> tuple[Path, float]:
        """``python -m module overrides`` into OUT/name (log OUT/name.log): (run directory, wall seconds).

        A stage that already finished in OUT with the same command is reused, with the wall time it took,
        unless an upstream stage (SFT, RM) ran again before it: a rerun with more --coefs runs only the
        new GRPO+ptx stages. A failed stage ends the bench with the tail of its log."""
        run_dir, log, record = self.out / name, self.out / f"{name}.log", self.out / f"{name}.stage.json"
        cmd = ["-m", module, *overrides, f"hydra.run.dir={run_dir}"]
        if record.is_file() and (run_dir / "summary.json").is_file() and not self.upstream_fresh:
            done = json.loads(record.read_text())
            if done["cmd"] == cmd:
                print(f"[{name}] reused from {run_dir} ({done['wall_s']:.0f} s when it ran)", flush=True)
                return run_dir, float(done["wall_s"])
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a different or unfinished stage: start it afresh
        print(f"[{name}] python -m {module} {' '.join(overrides)}  (log {log})", flush=True)
        start = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, *cmd], cwd=REPO, env=self.env, stdout=f, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.exit(f"[{name}] exit status {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        record.write_text(json.dumps({"cmd": cmd, "wall_s": wall}))
        self.upstream_fresh |= upstream
        print(f"[{name}] {wall:.0f} s", flush=True)
        return run_dir, wall


def task_sets(template: str) -> dict[str, tuple[Any, Any]]:
    """(training, held-out) prompt sets of both built-in tasks, built as the GRPO runs build them."""
    from rlvr.config import DataConfig
    from rlvr.data.sources import build_prompt_sets

    return {"arithmetic": build_prompt_sets(DataConfig(source="arithmetic", eval_size=HELD_OUT,
                                                       prompt_template=template)),
            "preference": build_prompt_sets(DataConfig(source="preference", eval_size=HELD_OUT))}


def mix_rows(sets: dict[str, tuple[Any, Any]], per_task: int) -> list[dict[str, Any]]:
    """``per_task`` training rows of each task, alternating, in the file schema (each names its verifier)."""
    rows = []
    for i in range(per_task):
        for name in TASKS:
            p = sets[name][0][i]
            rows.append({"id": f"{name}-{i}", "messages": [dict(m) for m in p.messages], "reference": p.reference,
                         "verifier": p.verifier, "solution": p.solution})
    return rows


def greedy_passed(model: Any, tokenizer: Any, prompts: Sequence[Any], scorer: Any) -> tuple[list[bool], Counter]:
    """Whether each prompt's greedy answer passes its row's verifier, and the verdicts counted."""
    from rlvr.data.chat import render_prompts
    from rlvr.rollout.base import SamplingParams
    from rlvr.rollout.hf import HFEngine

    out = HFEngine(model, tokenizer, batch_size=0).generate(
        render_prompts(tokenizer, prompts), SamplingParams(greedy=True, max_new_tokens=MAX_NEW_TOKENS),
        seeds=list(range(len(prompts))))
    result = scorer.score(list(prompts), out.texts)
    return [bool(x) for x in result.passed.tolist()], Counter(result.gate_reasons())


def measure(policy_dir: Path, sft_dir: Path, sets: dict[str, tuple[Any, Any]], scorer: Any) -> dict[str, Any]:
    """Per task: the held-out greedy pass rate, per-prompt verdicts and their counts; the sampled KL to SFT."""
    from rlvr.dpo.policy_eval import sampled_kl
    from rlvr.models import load_model, load_tokenizer

    tok, policy = load_tokenizer(policy_dir), load_model(policy_dir).eval()
    out: dict[str, Any] = {}
    for name in TASKS:
        passed, reasons = greedy_passed(policy, tok, [sets[name][1][i] for i in range(HELD_OUT)], scorer)
        out[name] = {"rate": sum(passed) / len(passed), "passed": passed, "reasons": dict(reasons)}
    out["kl"], out["kl_stderr"] = 0.0, 0.0
    if policy_dir != sft_dir:
        pref = [sets["preference"][1][i] for i in range(HELD_OUT)]
        kl = sampled_kl(policy, load_model(sft_dir).eval(), tok, pref, 2, MAX_NEW_TOKENS, seed=0)
        out["kl"], out["kl_stderr"] = kl["kl"], kl["kl_stderr"]
    return out


def flips(before: list[bool], after: list[bool]) -> str:
    """'lost/gained': prompts right before and wrong after, and the reverse."""
    lost = sum(b and not a for b, a in zip(before, after))
    return f"{lost}/{sum(a and not b for b, a in zip(before, after))}"


def grpo_overrides(sft_model: Path, rm_dir: Path, steps: int, coef: float, template: str,
                   extra: Sequence[str] = ()) -> list[str]:
    """tiny_rm_grpo from the SFT model (no warm-up of its own), evaluated before and after only,
    with the pretraining mix at ``coef`` when it is > 0, then the ``extra`` overrides."""
    out = ["+experiment=tiny_rm_grpo", f"model.path={sft_model}", "model.sft.steps=0",
           f"reward.sources.0.path={rm_dir}", f"trainer.total_steps={steps}", "trainer.eval.every=0", *extra]
    if coef > 0:
        out += [f"algorithm.ptx_coef={coef}", "data.ptx.source=arithmetic", f"data.ptx.prompt_template='{template}'"]
    return out


def print_table(rows: list[tuple[str, dict[str, Any], float]], out: Path) -> None:
    sft = rows[0][1]
    print(f"\n== alignment tax: tiny Llama, greedy on {HELD_OUT} held-out arithmetic problems and {HELD_OUT} "
          f"held-out preference prompts (runs in {out}) ==")
    print(f"{'policy':<15} {'arithmetic acc':>14} {'lost/gained':>11} {'true preference':>15} "
          f"{'KL to SFT':>13} {'wall s':>6}")
    for name, m, wall in rows:
        kl = f"{m['kl']:.2f}+-{m['kl_stderr']:.2f}"
        print(f"{name:<15} {m['arithmetic']['rate']:>14.2f} {flips(sft['arithmetic']['passed'], m['arithmetic']['passed']):>11} "
              f"{m['preference']['rate']:>15.2f} {kl:>13} {wall:>6.0f}")
    print("lost/gained: held-out arithmetic problems the SFT model got right and this policy gets wrong / the reverse; "
          "KL: nats per answer, sampled on the preference prompts")
    for name, m, _ in rows:
        print(f"  {name}: arithmetic {m['arithmetic']['reasons']}; preference {m['preference']['reasons']}")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="directory for the runs (default: a fresh temporary one); a rerun on the same "
                                  "directory reuses the stages that already ran with the same settings")
    ap.add_argument("--cache", help="model cache (default: OUT/cache, so the tiny model is built from scratch)")
    ap.add_argument("--rm", help="an existing reward-model directory (skips the RM stage)")
    ap.add_argument("--rm-from-scratch", action="store_true", help="RM backbone: the plain tiny Llama, not the SFT model")
    ap.add_argument("--rm-epochs", type=int, default=1, help="trainer.epochs of the RM stage (tiny_rm's own: 2)")
    ap.add_argument("--coefs", default="1", help="comma-separated algorithm.ptx_coef values, one GRPO+ptx run each")
    ap.add_argument("--grpo-steps", type=int, default=40, help="trainer.total_steps of every GRPO run (tiny_rm_grpo's own: 30)")
    ap.add_argument("--grpo-override", action="append", default=[], metavar="KEY=VALUE",
                    help="an rlvr-train override for every GRPO run (repeatable), e.g. algorithm.beta=0.04")
    ap.add_argument("--rows", type=int, default=4000, help="SFT rows per task in the mixed jsonl")
    ap.add_argument("--template", default=DEFAULT_TEMPLATE, help="phrasing of the arithmetic prompts (SFT and mix)")
    return ap.parse_args(argv)


def reward_model(args: argparse.Namespace, stages: Stages, sft_model: Path) -> tuple[Path, dict[str, Any]]:
    """(reward-model directory, its rlvr-rm summary with the stage's wall time; empty for --rm)."""
    if args.rm:
        return Path(args.rm).resolve(), {}
    backbone = [] if args.rm_from_scratch else ["model=local", f"model.path={sft_model}"]
    run_dir, wall = stages.run("rm", "rlvr.rm.train", ["+experiment=tiny_rm", *backbone,
                                                       f"trainer.epochs={args.rm_epochs}"], upstream=True)
    summary = {**json.loads((run_dir / "summary.json").read_text()), "wall_s": wall}
    return Path(summary["model_dir"]), summary


def main(argv: Optional[list[str]] = None) -> None:
    from rlvr.models import cache_key

    args = parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="rlvr-tax-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RLVR_CACHE": str(Path(args.cache or out / "cache").resolve()),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    os.environ.update({k: env[k] for k in ("RLVR_CACHE", "OMP_NUM_THREADS")})
    stages, sets = Stages(out, env), task_sets(args.template)
    mix = out / f"sft_mix-{cache_key([args.rows, args.template])}.jsonl"  # named by what it holds
    mix.write_text("".join(json.dumps(r) + "\n" for r in mix_rows(sets, args.rows)))
    sft_dir, sft_wall = stages.run("sft", "rlvr.sft", ["+experiment=tiny_pref_arith_sft", f"data.path={mix}"],
                                   upstream=True)
    sft_model = Path(json.loads((sft_dir / "summary.json").read_text())["model"])
    rm_dir, rm_summary = reward_model(args, stages, sft_model)
    runs = [("GRPO", 0.0)] + [(f"GRPO+ptx({float(c):g})", float(c)) for c in args.coefs.split(",")]
    grpo = [(name, *stages.run(f"grpo_ptx{coef:g}" if coef else "grpo", "rlvr.train",
                               grpo_overrides(sft_model, rm_dir, args.grpo_steps, coef, args.template,
                                              args.grpo_override)))
            for name, coef in runs]
    measure_report(out, sft_model, sft_wall, grpo, rm_summary, sets)


def measure_report(out: Path, sft_model: Path, sft_wall: float, stages: list[tuple[str, Path, float]],
                   rm_summary: dict[str, Any], sets: dict[str, tuple[Any, Any]]) -> None:
    import torch

    from rlvr.dpo.policy_eval import row_verifier_scorer

    torch.set_num_threads(1)
    with row_verifier_scorer() as scorer:
        table = [("SFT", measure(sft_model, sft_model, sets, scorer), sft_wall)]
        for name, run_dir, wall in stages:
            final = sorted((run_dir / "checkpoints").glob("step_*"))[-1]
            table.append((name, measure(final, sft_model, sets, scorer), wall))
    print_table(table, out)
    if rm_summary:
        print(f"reward model: held-out pairwise accuracy {rm_summary['pairwise_accuracy']:.3f}, length-bias gap "
              f"{rm_summary['length_bias_gap']:+.3f}, {rm_summary['wall_s']:.0f} s")
    runs = {name: json.loads((d / "summary.json").read_text()) for name, d, _ in stages}
    for name, s in runs.items():
        print(f"  {name} run's own figures: true preference {s['true_preference_before']:.2f} -> "
              f"{s['true_preference_after']:.2f}, per-token k3 KL {s['kl']:.4f}")
    (out / "alignment_tax.json").write_text(json.dumps(
        {"policies": {n: {**m, "wall_s": w} for n, m, w in table}, "reward_model": rm_summary,
         "runs": runs}, indent=1, default=str))


if __name__ == "__main__":
    main()
