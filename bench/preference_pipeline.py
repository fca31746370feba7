"""The preference pipeline from scratch, side by side: SFT -> reward model -> GRPO against it, and DPO.

    python bench/preference_pipeline.py [--cache DIR] [--out DIR] [--rm-from-sft] [--rm-dir DIR]
                                        [--grpo-steps N] [--skip-dpo]

Stages, each its own process on the same model cache (a fresh temporary one unless
--cache is given), all on the built-in preference task:

  1. SFT   the tiny Llama warmed up on the task's mixed-quality solutions, built exactly as
           `rlvr-train +experiment=tiny_rm_grpo` builds it (and cached: GRPO and DPO start
           from this very model)
  2. RM    `rlvr-rm +experiment=tiny_rm` (--rm-from-sft: its backbone is the SFT model, the
           InstructGPT recipe; --rm-dir DIR: use an existing reward-model directory instead)
  3. GRPO  `rlvr-train +experiment=tiny_rm_grpo` with that reward model (KL leash beta 0.2, 30 steps)
  4. DPO   `rlvr-dpo` on the same pairs the RM trained on (`rlvr-dpo +experiment=tiny_dpo` = tiny_rm's data)

Printed: the held-out true-preference rate (greedy answers meeting every hidden
dimension of the task's rule, 200 held-out prompts) of SFT, GRPO and DPO, the KL of each
policy to the SFT model measured the same way for both (sequence-level, on 2 samples per
held-out prompt at temperature 1, `rlvr.dpo.policy_eval.sampled_kl`), the RM's held-out
pairwise accuracy and length-bias gap, and each stage's wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRPO = "+experiment=tiny_rm_grpo"


def stage(name: str, cmd: list[str], env: dict[str, str], log: Path) -> float:
    shown = "rlvr.sft.warm_up of rlvr-train " + " ".join(cmd[3:]) if cmd[1] == "-c" else " ".join(cmd[2:])
    print(f"[{name}] {shown}  (log {log})", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"[{name}] failed with exit code {proc.returncode}; see {log}:\n" + log.read_text()[-2000:])
    print(f"[{name}] {wall:.0f} s", flush=True)
    return wall


_WARM_UP = """
import sys
from rlvr.dpo.start import compose_train_config
from rlvr.stage import load_data
from rlvr.sft import warm_up
cfg = compose_train_config(sys.argv[1:])
base, tok, train, _ = load_data(cfg)
print("WARMUP", warm_up(cfg, base, train, tok))
"""


def warm_up_dir(env: dict[str, str], log: Path) -> tuple[Path, float]:
    wall = stage("sft", [sys.executable, "-c", _WARM_UP, GRPO], env, log)
    line = [x for x in log.read_text().splitlines() if x.startswith("WARMUP ")][-1]
    return Path(line.split(" ", 1)[1]), wall


def measure(policy_dir: Path, sft_dir: Path) -> dict[str, float]:
    """True preference (greedy) and sampled KL to the SFT model, on the held-out prompts."""
    import torch

    from rlvr.dpo.policy_eval import greedy_pass_rate, row_verifier_scorer, sampled_kl
    from rlvr.dpo.start import compose_train_config
    from rlvr.stage import load_data
    from rlvr.models import load_model, load_tokenizer

    torch.set_num_threads(1)
    cfg = compose_train_config([GRPO])
    _, _, _, held = load_data(cfg, policy_dir=policy_dir)
    prompts = [held[i] for i in range(len(held))]
    tok, policy, sft = load_tokenizer(policy_dir), load_model(policy_dir).eval(), load_model(sft_dir).eval()
    with row_verifier_scorer() as scorer:
        rate, reasons, _ = greedy_pass_rate(policy, tok, prompts, cfg.rollout.max_new_tokens, scorer)
    kl = sampled_kl(policy, sft, tok, prompts, 2, cfg.rollout.max_new_tokens, seed=0)
    return {"true_preference": rate, "prompts": len(prompts), "kl": kl["kl"], "kl_stderr": kl["kl_stderr"], "reasons": dict(reasons),
            "sample_len": kl["sample_len"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", help="model cache (default: a fresh temporary one: everything is built)")
    ap.add_argument("--out", help="directory for the run directories (default: a temporary one)")
    ap.add_argument("--rm-from-sft", action="store_true", help="start the reward model from the SFT model")
    ap.add_argument("--rm-dir", help="an existing reward-model directory (skips the RM stage)")
    ap.add_argument("--grpo-steps", type=int, default=0, help="override trainer.total_steps of tiny_rm_grpo")
    ap.add_argument("--skip-dpo", action="store_true")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="rlvr-pref-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RLVR_CACHE": args.cache or str(out / "cache"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    walls: dict[str, float] = {}
    sft_dir, walls["sft"] = warm_up_dir(env, out / "sft.log")
    rm_summary: dict = {}
    if args.rm_dir:
        rm_dir = Path(args.rm_dir).resolve()
    else:
        rm_cmd = [sys.executable, "-m", "rlvr.rm.train", "+experiment=tiny_rm", f"hydra.run.dir={out / 'rm'}"]
        if args.rm_from_sft:
            rm_cmd += ["model=local", f"model.path={sft_dir}"]
        walls["rm"] = stage("rm", rm_cmd, env, out / "rm.log")
        rm_summary = json.loads((out / "rm" / "summary.json").read_text())
        rm_dir = Path(rm_summary["model_dir"])
    grpo_cmd = [sys.executable, "-m", "rlvr.train", GRPO, f"hydra.run.dir={out / 'grpo'}",
                f"reward.sources.0.path={rm_dir}"]
    if args.grpo_steps:
        grpo_cmd.append(f"trainer.total_steps={args.grpo_steps}")
    walls["grpo"] = stage("grpo", grpo_cmd, env, out / "grpo.log")
    grpo_summary = json.loads((out / "grpo" / "summary.json").read_text())
    grpo_final = sorted((out / "grpo" / "checkpoints").glob("step_*"))[-1]
    dpo_summary: dict = {}
    if not args.skip_dpo:
        walls["dpo"] = stage("dpo", [sys.executable, "-m", "rlvr.dpo.train", "+experiment=tiny_dpo",
                                     f"hydra.run.dir={out / 'dpo'}"], env, out / "dpo.log")
        dpo_summary = json.loads((out / "dpo" / "summary.json").read_text())
    report(out, sft_dir, rm_dir, rm_summary, grpo_summary, grpo_final, dpo_summary, walls, args)


def report(out, sft_dir, rm_dir, rm_summary, grpo_summary, grpo_final, dpo_summary, walls, args) -> None:
    os.environ.setdefault("RLVR_CACHE", str(out / "cache"))
    sft = measure(sft_dir, sft_dir)
    grpo = measure(grpo_final, sft_dir)
    dpo = measure(Path(dpo_summary["model_dir"]), sft_dir) if dpo_summary else None
    print(f"\n== preference pipeline (built-in task, {sft['prompts']} held-out prompts; runs in {out}) ==")
    if rm_summary:
        print(f"reward model ({'from the SFT model' if args.rm_from_sft else 'tiny Llama from scratch'}): held-out "
              f"pairwise accuracy {rm_summary['pairwise_accuracy']:.3f}, length-bias gap "
              f"{rm_summary['length_bias_gap']:+.3f}, {walls['rm']:.0f} s")
    else:
        print(f"reward model: {rm_dir} (given, not trained here)")
    print(f"{'policy':<6} {'true preference':>16} {'KL to SFT (nats/answer)':>26} {'wall s':>8}  failures (first per answer)")
    rows = [("SFT", sft, walls["sft"]), ("GRPO", grpo, walls["grpo"])] + ([("DPO", dpo, walls["dpo"])] if dpo else [])
    for name, m, wall in rows:
        fails = ", ".join(f"{k} {v}" for k, v in sorted(m["reasons"].items()) if k != "correct")
        print(f"{name:<6} {m['true_preference']:>16.3f} {m['kl']:>18.3f} +- {m['kl_stderr']:.3f} {wall:>8.0f}  {fails}")
    before = grpo_summary.get("true_preference_before", grpo_summary.get("accuracy_before"))
    after = grpo_summary.get("true_preference_after", grpo_summary.get("accuracy_after"))
    print(f"GRPO run's own summary: held-out true preference (eval/pass@1 of preference_rule) {before:.3f} -> "
          f"{after:.3f}")
    if dpo_summary:
        print(f"DPO run's own summary: true preference {dpo_summary['true_preference_before']:.3f} -> "
              f"{dpo_summary['true_preference_after']:.3f}, held-out implicit-reward accuracy "
              f"{dpo_summary['heldout_reward_accuracy_after']:.3f}, {dpo_summary['steps']} steps")
    gain = 100 * (grpo["true_preference"] - sft["true_preference"])
    line = (f"preference pipeline: true preference SFT {sft['true_preference']:.3f} -> GRPO "
            f"{grpo['true_preference']:.3f} ({gain:+.1f} points, KL {grpo['kl']:.2f})")
    if dpo:
        line += f", DPO {dpo['true_preference']:.3f} (KL {dpo['kl']:.2f})"
    print(line + f"; wall {sum(walls.values()):.0f} s")


if __name__ == "__main__":
    main()
